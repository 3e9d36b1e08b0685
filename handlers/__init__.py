"""The dialogue core: channel-neutral features of Barrio Conecta."""
