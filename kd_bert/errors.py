"""The one exception type for problems the user can fix, and the one failure with advice of its own."""


class UserError(Exception):
    """Bad input or setup. The message names the problem and the fix; the entry point prints it
    as one line on stderr and exits non-zero, with no traceback unless --debug is given."""


def is_cuda_out_of_memory(exc: BaseException) -> bool:
    """CUDA ran out of memory: the entry layer answers it with a smaller batch, so no layer below turns
    it into another error."""
    import torch  # only once something has failed: torch is loaded by then anyway

    return isinstance(exc, torch.cuda.OutOfMemoryError)


# Messages stay one readable line: a list names a few values, then how many more there are.
SHOWN = 5  # values a list in a message names at most
VALUE_WIDTH = 40  # characters of one value shown (a sentence in a label column, say)
LIST_WIDTH = 100  # characters of the values shown together


def clip(value, width: int = VALUE_WIDTH) -> str:
    """A value as text, cut to `width` characters."""
    text = str(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def listed(items, shown: int = SHOWN, width: int = LIST_WIDTH, total: int | None = None, sep: str = ", ") -> str:
    """'a, b, c and 4 more': at most `shown` items and about `width` characters of them (one at
    least), each clipped to `width`; `total` counts items not passed in."""
    items = [clip(item, width) for item in items]
    total = len(items) if total is None else total
    kept: list[str] = []
    for item in items[:shown]:
        if kept and len(sep.join(kept)) + len(sep) + len(item) > width:
            break
        kept.append(item)
    rest = total - len(kept)
    return sep.join(kept) + (f" and {rest} more" if rest > 0 else "")
