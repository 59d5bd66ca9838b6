"""The scheduler: workers are threads, but only one runs at a time; they hand over at every DynamoDB call
(a switch point) to a worker the seed's generator picks, so every interleaving is reproducible.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable


class Scheduler:
    """Only one worker runs at a time; at each switch point the seed's generator picks who runs next."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.cond = threading.Condition()
        self.turn: int | None = None
        self.alive: set[int] = set()
        self.local = threading.local()
        self.handovers: list[int] = []  # every worker picked, in order: the run's schedule (--digest)

    def run(self, bodies: list[Callable[[], None]]) -> bool:
        self.alive = set(range(len(bodies)))

        def main(index: int) -> None:
            self.local.index = index
            with self.cond:
                while self.turn != index:
                    self.cond.wait()
            try:
                bodies[index]()
            finally:
                with self.cond:
                    self.alive.discard(index)
                    self._pick()
                    self.cond.notify_all()

        threads = [threading.Thread(target=main, args=(i,), daemon=True) for i in range(len(bodies))]
        for thread in threads:
            thread.start()
        with self.cond:
            self._pick()
            self.cond.notify_all()
        for thread in threads:
            thread.join(timeout=120)
        return not any(thread.is_alive() for thread in threads)

    def _pick(self) -> None:
        self.turn = self.rng.choice(sorted(self.alive)) if self.alive else None
        if self.turn is not None:
            self.handovers.append(self.turn)

    def switch_point(self) -> None:
        me = getattr(self.local, "index", None)
        if me is None:
            return
        with self.cond:
            self._pick()
            self.cond.notify_all()
            while self.turn != me:
                self.cond.wait()
