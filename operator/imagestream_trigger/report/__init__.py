"""How the operator tells what it did: status conditions, Events, metrics."""
