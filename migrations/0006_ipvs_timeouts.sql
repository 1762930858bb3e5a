-- IPVS's global connection timeouts (ipvsadm --set TCP TCPFIN UDP, keepalived's
-- `lvs_timeouts`) when lbd manages them: one row, or none (lbd leaves the kernel's timeouts as
-- they are). Seconds; 0 leaves that one as the kernel has it; at most 2147483, INT_MAX / HZ for
-- every HZ up to 1000 (the kernel refuses more: ip_vs_set_timeout).
CREATE TABLE ipvs_timeouts (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    tcp_secs      INTEGER NOT NULL CHECK (tcp_secs BETWEEN 0 AND 2147483),
    tcp_fin_secs  INTEGER NOT NULL CHECK (tcp_fin_secs BETWEEN 0 AND 2147483),
    udp_secs      INTEGER NOT NULL CHECK (udp_secs BETWEEN 0 AND 2147483)
);
