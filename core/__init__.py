"""The lowest layer: building blocks every other folder may import and that import none of them.

`errors` is the one error hierarchy (each error carries its HTTP status and WebSocket close code);
`ranks` is the pure fractional-indexing algorithm behind board positions.
"""
