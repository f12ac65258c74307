"""Order handling against session_data; a paper broker for backtests."""

from sessionflow.execution_manager.paper import Fill, PaperExecutionManager

__all__ = ["Fill", "PaperExecutionManager"]
