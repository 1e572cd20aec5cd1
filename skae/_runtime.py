"""Torch runtime settings scoped to one call: threads and interrupts.

Nothing here touches torch's global random state: every random draw of skae
comes from a generator the model owns (see :mod:`skae._modules` and
:mod:`skae._net`).
"""

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

    None leaves torch's setting alone. ``torch.set_num_threads`` sets the
    calling thread's count *and* the count that threads started later begin
    with, so blocks that overlap in several threads (joblib's threading
    backend, a model server) could leave a transient value behind. Each
    block restores its own thread's count, and the last block to leave
    restores the count new threads start with to what it was when the first
    block entered.
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
                # This thread started inside another block and inherited its
                # transient count: set the default for new threads from a
                # helper thread, which leaves this thread's count alone.
                helper = threading.Thread(target=torch.set_num_threads, args=(saved,))
                helper.start()
                helper.join()


@contextlib.contextmanager
def interrupt_flag():
    """Yield a dict whose ``"sigint"`` turns True when SIGINT arrives inside.

    skorch stops training by raising ``KeyboardInterrupt`` (its
    ``EarlyStopping``, and any callback may do so), exactly what a Ctrl-C
    raises. The flag tells a real interrupt apart: the block's SIGINT handler
    records it, then hands the signal to the handler it replaced (Python's
    default raises ``KeyboardInterrupt``). Signal handlers belong to the main
    thread; elsewhere no SIGINT arrives and the flag stays False.
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
