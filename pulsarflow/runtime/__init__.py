"""The one runtime every deployment shares: decode, load state, run the engine, publish, save."""
