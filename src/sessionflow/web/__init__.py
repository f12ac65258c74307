"""The web dashboard (``sessionflow serve``): REST, WebSocket and the page, over one system."""

from sessionflow.web.app import create_app

__all__ = ["create_app"]
