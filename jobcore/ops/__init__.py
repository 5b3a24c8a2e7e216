"""What operators ask of a queue, as pure rules over what the backend read: find
and cancel, why a type waits, failures grouped by cause, per-minute history."""
