"""Test doubles that speak real protocols over local sockets (no mocked clients)."""
