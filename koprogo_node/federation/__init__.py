"""Federation between building nodes: identity, envelopes, gossip."""
