//! Framing codecs.
