"""Ops alerts that explain themselves (issue #6): what happened, to whom, how much, what to run.

Kept tiny on purpose: the event path imports this package only when an outcome needs a person, and the
notifier (SNS client, triage client, Powertools parameters) is built on first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.notify.notifier import Notifier


# Not named `notifier`: importing the submodule reconciler.notify.notifier sets that attribute on this
# package, and a function of the same name was replaced by the module after the first alert of a container.
@lru_cache(maxsize=1)
def shared_notifier() -> "Notifier":
    """The container's notifier (its grouping state lives as long as the container)."""
    from reconciler.config import load_config
    from reconciler.notify.notifier import build_notifier

    return build_notifier(load_config())


def flush_due() -> None:
    """Sends held-back counts whose window ended, if this container has a notifier; never builds one."""
    if shared_notifier.cache_info().currsize:
        shared_notifier().flush()
