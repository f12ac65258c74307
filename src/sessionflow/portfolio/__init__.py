"""Cash, positions, profit and loss, buying power; fills and corporate actions applied."""

from sessionflow.portfolio.portfolio import ACCOUNTS, Portfolio, Position

__all__ = ["ACCOUNTS", "Portfolio", "Position"]
