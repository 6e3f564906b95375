"""Microsoft Graph, the source side: delta page parsing (pure) and the SDK-backed reader."""
