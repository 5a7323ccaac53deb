"""The live layer: the y-websocket codec, rooms, sessions, awareness and the socket hub.
Above services (it asks them for permissions, snapshots, presence); never imports Tornado."""
