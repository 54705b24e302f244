"""Pure core: reading types, counter arithmetic, validation, rollups. No I/O."""
