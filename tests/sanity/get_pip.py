# Copyright: (c) 2026, failover-engine contributors
# Apache License 2.0 (see LICENSE)
"""A stand-in for the get-pip bootstrap script that ansible-test downloads.

``ansible-test sanity --venv`` bootstraps pip into every virtual environment it creates by
running ``get-pip-<version>.py``, which it downloads from a host outside the package
registries (so it fails offline) and caches as ``~/.ansible/test/cache/get_pip_<version>.py``.
``make lint`` puts this file in that cache (only where no script is cached yet, or where the
cached one is this stand-in). It does what get-pip does, from what Python ships:

1. installs the pip that Python bundles (``ensurepip``);
2. runs that pip with get-pip's arguments (``pip==<version>`` and pip options), so the pip
   that ansible-test asked for comes from the package index that pip is configured to use.

``ensurepip`` ignores every pip setting: it sets ``PIP_CONFIG_FILE`` to ``os.devnull``, which
would hide the index, proxy and CA settings from the second step. It runs in its own process
here, and ``PIP_CONFIG_FILE`` is dropped from the second step's environment when it is
``os.devnull``, so the second step reads the same configuration as any pip on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

# options that get-pip understands but ``pip install`` does not
GET_PIP_ONLY_OPTIONS = frozenset(('--no-setuptools', '--no-wheel'))

MARKER = 'failover-engine get-pip stand-in'


def pip_environment(environ):
    """Return the environment for the second step: pip with the machine's configuration."""
    env = dict(environ)
    if env.get('PIP_CONFIG_FILE') == os.devnull:
        del env['PIP_CONFIG_FILE']
    return env


def pip_install_arguments(arguments):
    """Return get-pip's command line as ``pip install`` arguments."""
    kept = [argument for argument in arguments if argument not in GET_PIP_ONLY_OPTIONS]
    return ['install', '--upgrade'] + kept


def main():
    """Bootstrap pip with ensurepip, then install the pip that was asked for."""
    try:
        import ensurepip  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    except ImportError:
        sys.exit('%s: this Python has no ensurepip module; install its venv support '
                 '(for example the python3-venv package) and run again' % MARKER)

    subprocess.run([sys.executable, '-m', 'ensurepip', '--upgrade'],
                   check=True, env=dict(os.environ))
    env = pip_environment(os.environ)
    if '--no-setuptools' in sys.argv[1:]:
        # ensurepip of Python 3.11 installs setuptools too; get-pip --no-setuptools does not
        subprocess.run([sys.executable, '-m', 'pip', 'uninstall', '--yes', '--quiet', 'setuptools'],
                       check=False, env=env)
    command = [sys.executable, '-m', 'pip'] + pip_install_arguments(sys.argv[1:])
    sys.exit(subprocess.run(command, check=False, env=env).returncode)


if __name__ == '__main__':
    main()
