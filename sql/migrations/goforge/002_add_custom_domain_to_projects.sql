-- GoForge migration 011.
ALTER TABLE projects ADD COLUMN custom_domain varchar(255);
