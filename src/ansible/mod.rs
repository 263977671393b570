//! Running ansible-playbook: not built yet (issue "deploy").
