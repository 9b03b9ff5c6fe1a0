pub mod email;
#[cfg(feature = "testing")]
pub mod testing;
