"""Run the cotgap CLI and SIGKILL the process at one chosen write (tests only).

``COTGAP_KILL=<path suffix>:<before|after>`` kills the process just before or just after cotgap
atomically writes the file whose path ends with the suffix (``stages/train.json:before`` = the
train stage's files are written, its record is not). Usage: ``python tests/killswitch.py run ...``.
"""

import os
import signal
import sys

from cotgap import jsonio

_spec = os.environ.get("COTGAP_KILL")
if _spec:
    _target, _when = _spec.rsplit(":", 1)
    _original = jsonio.atomic_write_text

    def _killing_write(path, text):
        hit = str(path).endswith(_target)
        if hit and _when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        _original(path, text)
        if hit and _when == "after":
            os.kill(os.getpid(), signal.SIGKILL)

    jsonio.atomic_write_text = _killing_write

if __name__ == "__main__":
    from cotgap.cli import main

    sys.argv[0] = "cotgap"
    main()
