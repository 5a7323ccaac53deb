"""Benchmarks of the WebSocket document path against the reference y-websocket server."""
