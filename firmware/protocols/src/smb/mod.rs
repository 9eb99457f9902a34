//! SMB: the dialects of the NEGOTIATE exchange, which tell how old a file server (or a
//! client) is: SMB1 (`NT LM 0.12`) still spoken, or SMB 2.0.2 … 3.1.1.
//!
//! Frames are NetBIOS session service messages (RFC 1002 §4.3; TCP 445 and 139) carrying
//! SMB2 (MS-SMB2 §2.2.3 NEGOTIATE request, §2.2.4 response) or SMB1 (MS-CIFS §2.2.4.52
//! SMB_COM_NEGOTIATE). Only the first frames of each direction are looked at: the parser
//! stops once the server chose a dialect, so a long file transfer costs nothing.

pub mod parser;
mod state;

pub use state::SmbParser;
