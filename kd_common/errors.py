"""The one exception type for problems the user can fix, and the one failure with advice of its own."""


class UserError(Exception):
    """Bad input or setup. The message names the problem and the fix; the entry point prints it
    as one line on stderr and exits non-zero, with no traceback unless --debug is given."""


def is_cuda_out_of_memory(exc: BaseException) -> bool:
    """CUDA ran out of memory: the entry layer answers it with a smaller batch, so no layer below turns
    it into another error."""
    import torch  # only once something has failed: torch is loaded by then anyway

    return isinstance(exc, torch.cuda.OutOfMemoryError)
