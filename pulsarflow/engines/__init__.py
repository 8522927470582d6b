"""Pure engines: functions of (state, message, now) returning (new state, outgoing messages)."""
