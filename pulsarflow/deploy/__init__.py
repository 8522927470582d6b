"""The deploy tool: functions.yaml to Pulsar Functions, schemas to the registry."""
