-- Tessera's default first-boot SQL for a tablet's mysqld. The agent runs it
-- once, as root over the unix socket, with sql_log_bin=0 so nothing here is
-- replicated: every tablet creates its own users, and a replica replaying
-- CREATE USER from its primary would stop with a duplicate-user error.
-- Placeholders in double braces are filled in by the agent; string values
-- arrive already escaped for use inside single quotes, the database name for
-- use inside backticks.

CREATE USER IF NOT EXISTS '{{DBA_USER}}'@'%' IDENTIFIED BY '{{DBA_PASSWORD}}';
GRANT ALL PRIVILEGES ON *.* TO '{{DBA_USER}}'@'%' WITH GRANT OPTION;

CREATE USER IF NOT EXISTS '{{REPL_USER}}'@'%' IDENTIFIED BY '{{REPL_PASSWORD}}';
GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR, BINLOG MONITOR
    ON *.* TO '{{REPL_USER}}'@'%';

-- The application user deliberately lacks SUPER and READ_ONLY ADMIN, so that
-- read_only=1 on a replica or a demoted primary really refuses its writes.
CREATE USER IF NOT EXISTS '{{APP_USER}}'@'%' IDENTIFIED BY '{{APP_PASSWORD}}';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, INDEX, REFERENCES,
    CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, CREATE VIEW, SHOW VIEW,
    CREATE ROUTINE, ALTER ROUTINE, EVENT, TRIGGER, PROCESS, RELOAD
    ON *.* TO '{{APP_USER}}'@'%';

CREATE DATABASE IF NOT EXISTS `{{DATABASE}}`;

-- The gate's write markers (crates/gate/src/write_marker.rs): a row per
-- backend connection, written inside each write transaction on a semi-sync
-- keyspace, so the outcome of a write whose answer a failover lost can be
-- read on the new primary. The rows themselves replicate.
CREATE DATABASE IF NOT EXISTS `_tessera`;
CREATE TABLE IF NOT EXISTS `_tessera`.`write_marker` (
    conn BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    seq BIGINT UNSIGNED NOT NULL,
    row_count BIGINT NOT NULL,
    insert_id BIGINT UNSIGNED NOT NULL,
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
        ON UPDATE CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB;
