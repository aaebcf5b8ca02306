"""The grid: a corridor of `size` cells; the agent starts on the left, the goal is the right end."""

from dataclasses import dataclass


@dataclass
class World:
    size: int = 6
    position: int = 0

    def move(self, step: int) -> bool:
        """Move one cell left (-1) or right (+1); True once the goal is reached."""
        self.position = min(max(self.position + step, 0), self.size - 1)
        return self.position == self.size - 1
