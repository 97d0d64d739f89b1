//! What `make bench` prices a delivery with: the cost meter, a counting proxy in front of the
//! AWS API emulator ([`meter`]), and the AWS list prices it is multiplied by ([`prices`]).

pub mod meter;
pub mod prices;
