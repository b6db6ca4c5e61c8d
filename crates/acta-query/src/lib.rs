//! acta's query language (placeholder until the parser lands).
