# -*- coding: utf-8 -*-
# Apache-2.0
"""Action plugin of resilience.failover.region_failover: the module's progress, live.

A region failover can take a while, and a module can only answer once, at the end. This plugin
(same name as the module, so Ansible runs it in the module's place) runs the module unchanged in
a background thread with ``progress_file`` set to a fresh file in Ansible's local temporary
directory, and meanwhile prints every complete line the module appends there with
``Display().display()``. In a worker process that call is forwarded to the controller, so the
lines appear in ``ansible-playbook``'s output as they are written, in order, before the task's
result. Then the file is removed and the module's result returned as it is (a failure included).

What it does not change:

* the module's arguments and the task's variables go through as given (check mode, diff mode,
  ``module_defaults`` and the rest are the module's as usual); ``progress_file`` is only added;
* a ``progress_file`` the task gives is tailed from its current end and left in place;
* when the module runs elsewhere than on the controller (a connection other than ``local``), the
  file would be written on that host: the module then runs without progress, as before; so does
  an ``async`` task (the module runs detached, as with any module).

No engine logic and no cloud call here: the module does the work, this only relays its lines.
"""
from __future__ import annotations

import contextvars
import os
import tempfile
import threading

from ansible import constants as C
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

MODULE = "resilience.failover.region_failover"
POLL_S = 0.1  # how often the file is looked at while the module runs

display = Display()


class ProgressTail:
    """Complete lines appended to a file since a starting offset; a partial last line waits."""

    def __init__(self, path: str, offset: int = 0):
        self.path = path
        self.offset = offset
        self._partial = b""

    def new_lines(self, final: bool = False) -> list[str]:
        """Lines completed since the last call; with ``final``, also an unterminated last line."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            data = b""
        self.offset += len(data)
        data = self._partial + data
        *lines, self._partial = data.split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # no longer has any effect
        if self._task.async_val:  # as the normal action plugin does it: no progress to relay
            wrap_async = not self._connection.has_native_async
            result = merge_hash(result, self._execute_module(module_name=MODULE, task_vars=task_vars,
                                                             wrap_async=wrap_async))
            if not wrap_async:
                self._remove_tmp_path(self._connection._shell.tmpdir)
            return result
        module_args = dict(self._task.args)
        given = module_args.get("progress_file")
        own_file = None
        if not given and self._connection.transport == "local":
            fd, own_file = tempfile.mkstemp(prefix="region-failover-progress-", suffix=".log",
                                            dir=C.DEFAULT_LOCAL_TMP)
            os.close(fd)
            module_args["progress_file"] = own_file
        try:
            path = given or own_file
            if path:
                path = os.path.expanduser(str(path))
                start = os.path.getsize(path) if os.path.exists(path) else 0
                answer = self._run_with_progress(module_args, task_vars, ProgressTail(path, start))
            else:
                answer = self._execute_module(module_name=MODULE, module_args=module_args, task_vars=task_vars)
        finally:
            if own_file:
                try:
                    os.unlink(own_file)
                except FileNotFoundError:
                    pass
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return merge_hash(result, answer)

    def _run_with_progress(self, module_args, task_vars, tail):
        """Run the module in a thread; relay the file's new lines here until it answers."""
        outcome = {}

        def execute():
            try:
                outcome["result"] = self._execute_module(module_name=MODULE, module_args=module_args,
                                                         task_vars=task_vars)
            except BaseException as exc:  # re-raised in the task's thread, below
                outcome["error"] = exc

        host = (task_vars or {}).get("inventory_hostname", "")
        prefix = f"[{host}] " if host else ""
        # the thread runs in a copy of this context: Ansible keeps templating state in contextvars
        worker = threading.Thread(target=contextvars.copy_context().run, args=(execute,),
                                  name="region-failover-module", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(POLL_S)
            for line in tail.new_lines():
                display.display(prefix + line)
        for line in tail.new_lines(final=True):
            display.display(prefix + line)
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]
