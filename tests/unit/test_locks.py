"""FileLock: one failover per service at a time, within a process and across processes."""
from __future__ import annotations

import json
import multiprocessing as mp
import os

import pytest

from failover_engine.core.errors import FailoverError, LockHeld
from failover_engine.coordination.locks import FileLock, LockProvider

CTX = mp.get_context("spawn")
TIMEOUT = 30


def test_file_lock_is_a_lock_provider(tmp_path):
    assert isinstance(FileLock(tmp_path), LockProvider)


def test_holding_twice_raises_lock_held_naming_the_holder(tmp_path):
    with FileLock(tmp_path / "locks").hold("web", "failover to usw2"):
        with pytest.raises(LockHeld) as exc:
            with FileLock(tmp_path / "locks").hold("web", "drill"):
                pytest.fail("the second holder must not get in")
    err = exc.value
    assert isinstance(err, FailoverError)
    assert err.service == "web"
    assert f"pid {os.getpid()}" in err.holder and "failover to usw2" in err.holder
    assert "'web'" in str(err) and "nothing was changed" in str(err)


def test_the_same_lock_object_cannot_be_held_twice(tmp_path):
    lock = FileLock(tmp_path)
    with lock.hold("web", "first"):
        with pytest.raises(LockHeld):
            with lock.hold("web", "second"):
                pass


def test_the_lock_file_records_the_holder_while_held_and_is_emptied_after(tmp_path):
    lock = FileLock(tmp_path)
    with lock.hold("web", "failover"):
        info = json.loads((tmp_path / "web.lock").read_text())
        assert info["pid"] == os.getpid() and info["purpose"] == "failover" and "host" in info
    assert (tmp_path / "web.lock").read_text() == ""


def test_released_after_the_context(tmp_path):
    lock = FileLock(tmp_path)
    with lock.hold("web", "first"):
        pass
    with FileLock(tmp_path).hold("web", "second"):
        pass


def test_released_when_the_body_raises(tmp_path):
    lock = FileLock(tmp_path)
    with pytest.raises(RuntimeError):
        with lock.hold("web", "first"):
            raise RuntimeError("apply failed")
    with lock.hold("web", "second"):
        pass


def test_a_refused_holder_does_not_release_the_lock(tmp_path):
    lock = FileLock(tmp_path)
    with lock.hold("web", "first"):
        with pytest.raises(LockHeld):
            with lock.hold("web", "second"):
                pass
        with pytest.raises(LockHeld) as exc:  # still held, and still by the first holder
            with lock.hold("web", "third"):
                pass
        assert "first" in exc.value.holder


def test_services_lock_independently(tmp_path):
    lock = FileLock(tmp_path)
    with lock.hold("web", "a"), lock.hold("api", "b"):
        pass


def test_an_unreadable_or_empty_lock_file_names_its_holder_as_well_as_it_can(tmp_path):
    (tmp_path / "web.lock").write_text("not json")
    assert FileLock._holder(tmp_path / "web.lock") == "unknown holder"
    # empty: the holder has the flock but has not written its details yet
    (tmp_path / "web.lock").write_text("")
    assert FileLock._holder(tmp_path / "web.lock") == "a run that is just starting"


# --------------------------------------------------------------------------- across processes
def _try_hold(directory: str, service: str, out: "mp.Queue") -> None:
    try:
        with FileLock(directory).hold(service, "child"):
            out.put(("held", os.getpid()))
    except LockHeld as exc:
        out.put(("refused", exc.holder))


def _hold_until(directory: str, service: str, held: "mp.Event", release: "mp.Event") -> None:
    with FileLock(directory).hold(service, "child holder"):
        held.set()
        release.wait(TIMEOUT)


def test_a_child_process_cannot_take_the_lock_while_held(tmp_path):
    out = CTX.Queue()
    with FileLock(tmp_path).hold("web", "parent failover"):
        child = CTX.Process(target=_try_hold, args=(str(tmp_path), "web", out))
        child.start()
        status, holder = out.get(timeout=TIMEOUT)
        child.join(TIMEOUT)
    assert status == "refused"
    assert f"pid {os.getpid()}" in holder and "parent failover" in holder


def test_a_child_process_takes_the_lock_once_released(tmp_path):
    with FileLock(tmp_path).hold("web", "parent"):
        pass
    out = CTX.Queue()
    child = CTX.Process(target=_try_hold, args=(str(tmp_path), "web", out))
    child.start()
    status, _unused = out.get(timeout=TIMEOUT)
    child.join(TIMEOUT)
    assert status == "held"


def test_the_parent_is_refused_while_a_child_holds_and_gets_it_after(tmp_path):
    held, release = CTX.Event(), CTX.Event()
    child = CTX.Process(target=_hold_until, args=(str(tmp_path), "web", held, release))
    child.start()
    try:
        assert held.wait(TIMEOUT)
        with pytest.raises(LockHeld) as exc:
            with FileLock(tmp_path).hold("web", "parent"):
                pass
        assert f"pid {child.pid}" in exc.value.holder and "child holder" in exc.value.holder
    finally:
        release.set()
        child.join(TIMEOUT)
    with FileLock(tmp_path).hold("web", "parent"):
        pass


def test_the_kernel_releases_the_lock_of_a_killed_holder(tmp_path):
    held, release = CTX.Event(), CTX.Event()
    child = CTX.Process(target=_hold_until, args=(str(tmp_path), "web", held, release))
    child.start()
    assert held.wait(TIMEOUT)
    child.kill()  # this test's own child, by its pid
    child.join(TIMEOUT)
    with FileLock(tmp_path).hold("web", "after crash"):
        pass
