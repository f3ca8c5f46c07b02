"""The built-in SOP playbook: template files installed by `wecom-assistant sop install-playbook`."""
