"""Torch runtime settings scoped to one call: threads and interrupts."""

import contextlib
import signal
import threading

import torch

# Besides each thread's count, torch keeps a process-wide one, which every
# ``torch.set_num_threads`` sets and a thread takes when it first reads its
# count or runs a parallel op (even if it has set its own). Blocks change that
# count and put it back under this lock only, so outside the lock it is what it
# was before any block.
_threads_lock = threading.Lock()


def _set_own_threads(n):
    """Give the calling thread ``n`` torch threads, and no other thread.

    A fresh thread reads the process-wide count before and puts it back after;
    returns that count.
    """
    default, read, written = [], threading.Event(), threading.Event()

    def keep():
        default.append(torch.get_num_threads())  # its first read: the count
        read.set()
        written.wait()
        torch.set_num_threads(default[0])

    keeper = threading.Thread(target=keep)
    keeper.start()
    read.wait()
    try:
        torch.set_num_threads(n)
    finally:
        written.set()
        keeper.join()
    return default[0]


@contextlib.contextmanager
def num_threads(n):
    """Use ``n`` torch intra-op threads in the calling thread inside the block.

    None leaves torch's setting alone. Other threads, including those started
    during or after the block, keep torch's count, also when blocks in several
    threads overlap.
    """
    if n is None:
        yield
        return
    with _threads_lock:
        # A thread's first torch call takes the process-wide count, which only
        # under the lock is sure to be the one from before any block.
        before = torch.get_num_threads()
    if n == before:  # nothing to change, no thread to start
        yield
        return
    with _threads_lock:
        default = _set_own_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            if before == default:
                torch.set_num_threads(before)  # both counts back at once
            else:
                _set_own_threads(before)


@contextlib.contextmanager
def interrupt_flag():
    """Yield a dict whose ``"sigint"`` turns True when SIGINT arrives inside.

    skorch's callbacks also stop training with ``KeyboardInterrupt``; the flag
    tells a real Ctrl-C apart. The handler then calls the one it replaced.
    Outside the main thread no SIGINT arrives and the flag stays False.
    """
    flag = {"sigint": False}
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # not the main thread, SIG_IGN or SIG_DFL
        yield flag
        return

    def handler(signum, frame):
        flag["sigint"] = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
