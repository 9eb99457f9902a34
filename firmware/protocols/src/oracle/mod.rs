//! Oracle TNS: the connect data of the client's CONNECT packet
//! (`(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST=db01)(PORT=1521))(CONNECT_DATA=
//! (SERVICE_NAME=ORCL)(CID=(PROGRAM=sqlplus)(HOST=pc01)(USER=taro))))`): service name
//! (or SID), host, program and OS user. Long connect data travels in the packet after
//! the CONNECT header, so the first bytes of the client side are scanned as text.

pub mod parser;
mod state;

pub use state::TnsParser;
