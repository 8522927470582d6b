"""What users write workflows with: decorators, the workflow context and the client."""
