"""schemathesis hooks for Vigil: an NDJSON telemetry batch is sent as the text it is."""
import schemathesis

schemathesis.serializer.alias("application/x-ndjson", "text/plain")
