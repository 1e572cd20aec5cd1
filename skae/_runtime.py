"""Torch runtime settings scoped to one call: threads and interrupts."""

import contextlib
import signal
import threading

import torch

_threads_lock = threading.Lock()
_threads_depth = 0
_threads_saved = None


@contextlib.contextmanager
def num_threads(n):
    """Use ``n`` torch intra-op threads in the calling thread inside the block.

    None leaves torch's setting alone. ``torch.set_num_threads`` also sets the
    count new threads start with, so the last of overlapping blocks restores
    that to its value when the first entered.
    """
    global _threads_depth, _threads_saved
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    with _threads_lock:
        if _threads_depth == 0:
            _threads_saved = before
        _threads_depth += 1
    torch.set_num_threads(n)
    try:
        yield
    finally:
        with _threads_lock:
            _threads_depth -= 1
            last, saved = _threads_depth == 0, _threads_saved
            torch.set_num_threads(before)
            if last and before != saved:
                # This thread inherited a transient count: reset new threads'
                # default from a helper thread, leaving this thread's own alone.
                helper = threading.Thread(target=torch.set_num_threads, args=(saved,))
                helper.start()
                helper.join()


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
