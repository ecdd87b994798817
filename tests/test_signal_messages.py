"""The stop message names the signal that came: SIGTERM says SIGTERM, Ctrl-C keeps the hint to press it again."""

from __future__ import annotations

import os
import signal

import pytest

from mlcli.cli.signals import StopFlag


def test_sigterm_message_names_sigterm_not_ctrl_c(capsys):
    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
    err = capsys.readouterr().err
    assert "received SIGTERM: stopping after the current batch" in err
    assert "Ctrl-C" not in err
    assert stop() and stop.exit_code == 143


def test_ctrl_c_message_keeps_the_hint_and_a_second_one_aborts(capsys):
    with StopFlag() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert "stopping after the current batch (Ctrl-C again to abort)" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert stop.exit_code == 130
