"""marshmallow schemas of the JSON events published on JetStream (the public NATS contract)."""
