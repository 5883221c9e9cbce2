//! Parcel tracking: the provider interface, the 17TRACK and Cainiao
//! clients, the unified status model and the refresh schedule.
