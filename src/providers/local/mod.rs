//! Local sandbox hosts (systemd-nspawn containers): not built yet (issue "local sandbox provider").
