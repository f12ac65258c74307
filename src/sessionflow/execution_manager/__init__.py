"""Orders, the fill model, commission and slippage, and the brokers behind one boundary."""

from sessionflow.execution_manager.backtest_broker import BacktestBroker
from sessionflow.execution_manager.broker import Broker
from sessionflow.execution_manager.commission import CommissionModel, parse_commission
from sessionflow.execution_manager.fill_model import FillModel
from sessionflow.execution_manager.manager import ExecutionManager, RiskLimits
from sessionflow.execution_manager.orders import (
    Fill,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    RejectReason,
    Side,
    TimeInForce,
)
from sessionflow.execution_manager.slippage import SlippageModel, parse_slippage

__all__ = [
    "BacktestBroker",
    "Broker",
    "CommissionModel",
    "ExecutionManager",
    "Fill",
    "FillModel",
    "Order",
    "OrderEvent",
    "OrderStatus",
    "OrderType",
    "RejectReason",
    "RiskLimits",
    "Side",
    "SlippageModel",
    "TimeInForce",
    "parse_commission",
    "parse_slippage",
]
