//! Ingestion (one email's extraction applied in one transaction) and the
//! status snapshot.
