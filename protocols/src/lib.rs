//! Framing codecs and sample protocol handlers.
