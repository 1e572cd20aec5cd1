"""Per-call torch settings: threads, interrupts, device."""

import os
import signal
import threading

import pytest
import torch

from skae._devices import resolve_device
from skae._runtime import interrupt_flag, num_threads


def _in_new_thread(fn):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn()))
    thread.start()
    thread.join()
    return out[0]


def test_num_threads_restores_the_setting():
    before = torch.get_num_threads()
    with num_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with num_threads(None):
        assert torch.get_num_threads() == before


def test_blocks_in_other_threads_leave_every_count_alone():
    # A thread started while another's block is open starts with torch's
    # count, and neither its overlapping block (left last) nor a later one of
    # its own, run alone, changes the count of the calling thread or of
    # threads started afterwards.
    torch.set_num_threads(2)
    entered, release, left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first():
        with num_threads(1):
            entered.set()
            release.wait(10)
        left.set()

    def second():
        seen["start"] = torch.get_num_threads()
        with num_threads(1):
            release.set()
            left.wait(10)  # the second block leaves last
        with num_threads(1):
            seen["inside"] = torch.get_num_threads()
        seen["end"] = torch.get_num_threads()

    a = threading.Thread(target=first)
    a.start()
    entered.wait(10)
    b = threading.Thread(target=second)  # starts while the first block is open
    b.start()
    a.join(10)
    b.join(10)
    assert torch.get_num_threads() == 2
    assert _in_new_thread(torch.get_num_threads) == 2
    assert seen == {"start": 2, "inside": 1, "end": 2}


def test_a_thread_with_a_count_of_its_own_gets_it_back():
    # This thread has 3 threads, threads started now 2: a block changes
    # neither for the others and puts back both.
    torch.set_num_threads(3)
    _in_new_thread(lambda: torch.set_num_threads(2))
    with num_threads(1):
        assert torch.get_num_threads() == 1
        assert _in_new_thread(torch.get_num_threads) == 2
    assert torch.get_num_threads() == 3
    assert _in_new_thread(torch.get_num_threads) == 2


def test_interrupt_flag_records_a_real_sigint_only():
    with interrupt_flag() as flag:
        with pytest.raises(KeyboardInterrupt):
            raise KeyboardInterrupt  # what skorch's EarlyStopping raises
        assert not flag["sigint"]
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert flag["sigint"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_interrupt_flag_outside_the_main_thread_is_never_set():
    flags = _in_new_thread(lambda: interrupt_flag().__enter__())
    assert flags == {"sigint": False}


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="device='cuda' but CUDA is not available"):
        resolve_device("cuda")
    assert resolve_device("auto") == torch.device("cpu")
