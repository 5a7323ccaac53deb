"""The NATS bus: the connection, stream and subject definitions, the document log, event
schemas and publishing, revocation signals. Below services; knows nothing of sockets."""
