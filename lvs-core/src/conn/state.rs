//! IPVS's per-protocol connection state machines and their timeouts.
//!
//! TCP follows `net/netfilter/ipvs/ip_vs_proto_tcp.c`: eleven states in the kernel's
//! order ([`TcpState`]), three transition tables selected by the direction a segment
//! crossed the director ([`Direction`]), and the segment's flags reduced to one event,
//! RST first, then SYN, FIN, ACK. [`tcp_transition`] uses the normal table
//! (`tcp_states`), [`tcp_transition_secure`] the one the `secure_tcp` defense switches
//! to (`tcp_states_dos`). UDP has a single state (`UDP` in `ipvsadm -L -c`) whose only
//! effect is to re-arm the UDP timeout on every packet.
//!
//! These are IPVS's view of a connection from the director, not RFC 9293's: the
//! director sees one or both directions and never checks sequence numbers, so the
//! states are coarse and, as in the kernel, any segment can move a connection.
//!
//! [`Timeouts`] holds the timeout of each state with the kernel's defaults and the
//! semantics of `ipvsadm --set` / `ipvsadm -L --timeout`.
//!
//! ## Guarantees
//! - Total: every (state, direction, flags) has a next state; nothing here panics.
//! - Pure and `const`: the transition functions only read static tables.
//! - No allocation.

use crate::time::Duration;
use crate::wire::TcpFlags;

/// The state of a TCP connection as IPVS tracks it (the kernel's `IP_VS_TCP_S_*`, in
/// the kernel's order, so the discriminant is the value the kernel and its sync
/// protocol use).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TcpState {
    /// No segment seen yet (a new entry, and connection templates).
    #[default]
    None = 0,
    /// Established: data may flow both ways.
    Established = 1,
    /// A SYN came from the real server's side (output).
    SynSent = 2,
    /// A SYN came from the client (input): the director's view of a handshake under way.
    SynRecv = 3,
    /// One side sent FIN.
    FinWait = 4,
    /// Both sides closed (or the table treats it so).
    TimeWait = 5,
    /// Reset or never properly opened.
    Close = 6,
    /// The client sent FIN while the connection was established.
    CloseWait = 7,
    /// Waiting for the last ACK.
    LastAck = 8,
    /// Waiting for a connection the director expects (the kernel's
    /// `ip_vs_tcp_conn_listen`, used by the FTP helper for data connections).
    Listen = 9,
    /// A SYN/ACK handshake the `secure_tcp` tables track separately.
    SynAck = 10,
}

impl TcpState {
    /// Number of states (the kernel's `IP_VS_TCP_S_LAST`).
    pub const COUNT: usize = 11;

    /// Every state, in discriminant order.
    pub const ALL: [TcpState; TcpState::COUNT] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with discriminant `v`, or `None` for 11 and above.
    pub const fn from_u8(v: u8) -> Option<TcpState> {
        if (v as usize) < TcpState::COUNT {
            Some(TcpState::ALL[v as usize])
        } else {
            None
        }
    }

    /// The name `ipvsadm -L -c` prints (the kernel's `tcp_state_name`).
    pub const fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Whether a connection in this state counts in its real server's ActiveConn
    /// (otherwise InActConn): the kernel's `tcp_state_active_table`, which counts the
    /// handshake states SYN_SENT, SYN_RECV and SYNACK as active besides ESTABLISHED
    /// (Linux counted ESTABLISHED alone before 2016), so that the least-connection
    /// schedulers see a burst of new connections before their handshakes finish.
    pub const fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }

    /// Whether this is a half-open state a SYN flood leaves behind: SYN_RECV (the
    /// client's SYN seen, with the normal tables, whatever the server answered) and
    /// SYNACK (the same with the `secure_tcp` tables). These are the states the kernel's
    /// `drop_entry` defense (`ip_vs_random_dropentry`) drops unconditionally.
    pub const fn is_embryonic(self) -> bool {
        matches!(self, TcpState::SynRecv | TcpState::SynAck)
    }

    /// Whether a new SYN on a connection in this state may always be rescheduled to a
    /// (possibly different) real server when `conn_reuse_mode` is on: TIME_WAIT and
    /// CLOSE. This is the unconditional part of the kernel's `is_new_conn_expected`;
    /// [`TcpState::is_new_conn_expected`] adds the FIN_WAIT case.
    pub const fn is_closing_for_reuse(self) -> bool {
        matches!(self, TcpState::TimeWait | TcpState::Close)
    }

    /// The kernel's `is_new_conn_expected` for TCP: whether a SYN arriving for an
    /// existing connection in this state starts a new one, to be scheduled afresh (the
    /// old entry expires). Call it only when `conn_reuse_mode` is non-zero (the kernel
    /// skips the whole check at 0) and only for a connection no template controls (a
    /// persistent or FTP-data connection is never rescheduled).
    ///
    /// - TIME_WAIT and CLOSE: always.
    /// - FIN_WAIT: only with bit 1 (value 2) of `conn_reuse_mode` and when the director
    ///   has seen no packet from the real server (`no_output`, the kernel's
    ///   `IP_VS_CONN_F_NOOUTPUT`: a DR or TUN connection, see [`Direction::InputOnly`]),
    ///   where FIN_WAIT is as far as the director can follow a close.
    pub const fn is_new_conn_expected(self, no_output: bool, conn_reuse_mode: u8) -> bool {
        match self {
            TcpState::TimeWait | TcpState::Close => true,
            TcpState::FinWait => no_output && conn_reuse_mode & 2 != 0,
            _ => false,
        }
    }
}

impl core::fmt::Display for TcpState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// The name `ipvsadm -L -c` prints for every UDP connection (the kernel's only UDP
/// state, `IP_VS_UDP_S_NORMAL`).
pub const UDP_STATE_NAME: &str = "UDP";

/// Which way a packet crossed the director, as the state tables see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Direction {
    /// Client to real server, on a connection where the director also carries (or may
    /// carry) the replies: NAT and FULLNAT, or any connection once a reply was seen.
    Input,
    /// Real server to client through the director (NAT and FULLNAT replies).
    Output,
    /// Client to real server on a connection whose replies bypass the director (DR and
    /// TUN): the kernel's input-only table, used while the connection carries
    /// `IP_VS_CONN_F_NOOUTPUT`. The kernel clears that flag on the first output packet,
    /// after which input packets use [`Direction::Input`]; the caller tracks the flag.
    InputOnly,
}

impl Direction {
    const fn table_index(self) -> usize {
        match self {
            Direction::Input => 0,
            Direction::Output => 1,
            Direction::InputOnly => 2,
        }
    }
}

/// The event a segment is for the tables: the kernel's `tcp_state_idx`. RST wins over
/// SYN, SYN over FIN, FIN over ACK; [`EV_NONE`] when none of the four is set. Indexed by
/// the four flags packed into four bits ([`event_bits`]), so that the lookup has no
/// branch.
static TCP_EVENT: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        // bit 0 FIN, bit 1 SYN, bit 2 RST, bit 3 ACK
        t[i] = if i & 4 != 0 {
            EV_RST
        } else if i & 2 != 0 {
            EV_SYN
        } else if i & 1 != 0 {
            EV_FIN
        } else if i & 8 != 0 {
            EV_ACK
        } else {
            EV_NONE
        } as u8;
        i += 1;
    }
    t
};

/// FIN, SYN and RST (bits 0-2 of the TCP flags) and ACK (bit 4) packed into four bits.
#[inline(always)]
const fn event_bits(flags: TcpFlags) -> usize {
    ((flags.0 & 0x07) | ((flags.0 >> 1) & 0x08)) as usize
}

/// Row order of the tables, as in the kernel.
const EV_SYN: usize = 0;
const EV_FIN: usize = 1;
const EV_ACK: usize = 2;
const EV_RST: usize = 3;
/// None of RST, SYN, FIN and ACK: the kernel's `set_tcp_state` starts from CLOSE and
/// keeps it, so this row is CLOSE throughout.
const EV_NONE: usize = 4;

/// `[direction][event][current state] -> next state`.
type Table = [[[TcpState; TcpState::COUNT]; 5]; 3];

// Short names so the tables read like the kernel's (no transition leads to NONE).
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;
const SA: TcpState = TcpState::SynAck;

/// The kernel's `tcp_states` (Linux 6.x).
#[rustfmt::skip]
static TCP_STATES: Table = [
    // INPUT
    [
        //     NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT
    [
        /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The kernel's `tcp_states_dos`, in force while `secure_tcp` is on.
#[rustfmt::skip]
static TCP_STATES_DOS: Table = [
    // INPUT
    [
        //     NO  ES  SS  SR  FW  TW  CL  CW  LA  LI  SA
        /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        /*ack*/ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT
    [
        /*syn*/ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /*syn*/ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
        /*none*/[CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

#[inline(always)]
const fn lookup(table: &Table, state: TcpState, dir: Direction, flags: TcpFlags) -> TcpState {
    table[dir.table_index()][TCP_EVENT[event_bits(flags)] as usize][state as usize]
}

/// The state after a segment with `flags` crossed the director in `dir`, by the
/// kernel's normal table (`tcp_states`, `secure_tcp` off).
///
/// A segment with none of RST, SYN, FIN and ACK moves the connection to CLOSE, as the
/// kernel's `set_tcp_state` does. The caller re-arms the connection's timer with
/// [`Timeouts::tcp`] of the new state, and moves it between ActiveConn and InActConn
/// when [`TcpState::is_active`] changes.
pub const fn tcp_transition(state: TcpState, dir: Direction, flags: TcpFlags) -> TcpState {
    lookup(&TCP_STATES, state, dir, flags)
}

/// As [`tcp_transition`], by the table the kernel uses while the `secure_tcp` defense
/// is active (`tcp_states_dos`). With NAT a connection reaches ESTABLISHED only once
/// the real server has sent a segment after its SYN/ACK: the client's ACKs alone leave
/// it in SYN_RECV or SYNACK, where [`TcpState::is_embryonic`] and the handshake
/// timeouts apply. On DR/TUN (input only) a client's SYN leads to SYNACK instead of
/// SYN_RECV.
pub const fn tcp_transition_secure(state: TcpState, dir: Direction, flags: TcpFlags) -> TcpState {
    lookup(&TCP_STATES_DOS, state, dir, flags)
}

/// Connection timeouts per protocol state, as the kernel keeps them per network
/// namespace (`pd->timeout_table`), plus the default persistence timeout of a service.
///
/// Values are held in milliseconds; the kernel holds jiffies and `ipvsadm` shows whole
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    tcp: [Duration; TcpState::COUNT],
    udp: Duration,
    persistence: Duration,
}

impl Timeouts {
    /// The kernel's defaults (`tcp_timeouts`, `udp_timeouts`): TCP NONE 2 s,
    /// ESTABLISHED 900 s, SYN_SENT 120 s, SYN_RECV 60 s, FIN_WAIT 120 s, TIME_WAIT
    /// 120 s, CLOSE 10 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, LISTEN 120 s, SYNACK 120 s;
    /// UDP 300 s; and persistence 300 s, as ipvsadm's manual documents `-p` (ipvsadm's
    /// code, `IPVS_SVC_PERSISTENT_TIMEOUT` in libipvs, actually sends 360 s for a bare
    /// `-p`; a rule parser that wants that behaviour passes 360 explicitly).
    pub const DEFAULT: Timeouts = Timeouts {
        tcp: [
            Duration::from_secs(2),
            Duration::from_secs(15 * 60),
            Duration::from_secs(2 * 60),
            Duration::from_secs(60),
            Duration::from_secs(2 * 60),
            Duration::from_secs(2 * 60),
            Duration::from_secs(10),
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(2 * 60),
            Duration::from_secs(120),
        ],
        udp: Duration::from_secs(5 * 60),
        persistence: Duration::from_secs(300),
    };

    /// The timeout a TCP connection gets on entering `state`.
    #[inline]
    pub const fn tcp(&self, state: TcpState) -> Duration {
        self.tcp[state as usize]
    }

    /// The timeout a UDP connection gets on every packet.
    #[inline]
    pub const fn udp(&self) -> Duration {
        self.udp
    }

    /// The persistence timeout a persistent service gets when none is given.
    #[inline]
    pub const fn persistence(&self) -> Duration {
        self.persistence
    }

    /// Sets the timeout of one TCP state (the kernel's per-state sysctl-less table
    /// entry; `ipvsadm --set` reaches only ESTABLISHED and FIN_WAIT, see [`set`]).
    ///
    /// [`set`]: Timeouts::set
    #[inline]
    pub const fn set_tcp_state(&mut self, state: TcpState, timeout: Duration) {
        self.tcp[state as usize] = timeout;
    }

    /// Sets the UDP timeout.
    #[inline]
    pub const fn set_udp(&mut self, timeout: Duration) {
        self.udp = timeout;
    }

    /// Sets the default persistence timeout.
    #[inline]
    pub const fn set_persistence(&mut self, timeout: Duration) {
        self.persistence = timeout;
    }

    /// `ipvsadm --set tcp tcpfin udp` (the kernel's `ip_vs_set_timeout`): `tcp` sets
    /// ESTABLISHED, `tcpfin` sets FIN_WAIT, `udp` sets UDP; a zero leaves that value
    /// unchanged. No other state changes (TIME_WAIT, CLOSE_WAIT, LAST_ACK keep theirs).
    pub const fn set(&mut self, tcp: Duration, tcpfin: Duration, udp: Duration) {
        if tcp.total_millis() != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin.total_millis() != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp.total_millis() != 0 {
            self.udp = udp;
        }
    }

    /// `(tcp, tcpfin, udp)` as `ipvsadm -L --timeout` prints them (`Timeout (tcp tcpfin
    /// udp): 900 120 300` with the defaults): the ESTABLISHED, FIN_WAIT and UDP
    /// timeouts.
    pub const fn get(&self) -> (Duration, Duration, Duration) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts::DEFAULT
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    const SYN: TcpFlags = TcpFlags::SYN;
    const ACK: TcpFlags = TcpFlags::ACK;
    const FIN: TcpFlags = TcpFlags::FIN;
    const RST: TcpFlags = TcpFlags::RST;
    const IN: Direction = Direction::Input;
    const OUT: Direction = Direction::Output;
    const IO: Direction = Direction::InputOnly;

    /// A plain ACK keeps ESTABLISHED in every direction and both tables, whatever
    /// other flags (PSH, URG, ECE, CWR) it carries: the director's shortcut.
    #[test]
    fn ack_keeps_established_everywhere() {
        for other in 0..=255u8 {
            let f = TcpFlags((other & !0x17) | TcpFlags::ACK.0);
            for dir in [IN, OUT, IO] {
                let es = TcpState::Established;
                assert_eq!(tcp_transition(es, dir, f), es, "{f:?} {dir:?}");
                assert_eq!(tcp_transition_secure(es, dir, f), es, "{f:?} {dir:?}");
            }
        }
    }

    /// The branch-free event lookup is the kernel's priority chain (RST, SYN, FIN, ACK,
    /// else CLOSE), for every byte of flags.
    #[test]
    fn event_lookup_is_the_priority_chain() {
        for b in 0..=255u8 {
            let f = TcpFlags(b);
            let want = if f.rst() {
                EV_RST
            } else if f.syn() {
                EV_SYN
            } else if f.fin() {
                EV_FIN
            } else if f.ack() {
                EV_ACK
            } else {
                EV_NONE
            };
            assert_eq!(
                usize::from(TCP_EVENT[event_bits(f)]),
                want,
                "flags {b:#04x}"
            );
            for dir in [IN, OUT, IO] {
                for st in TcpState::ALL {
                    if want == EV_NONE {
                        assert_eq!(tcp_transition(st, dir, f), TcpState::Close);
                        assert_eq!(tcp_transition_secure(st, dir, f), TcpState::Close);
                    }
                }
            }
        }
    }

    /// Runs `steps` from `start` with the normal table, returning every state reached.
    fn run(start: TcpState, steps: &[(Direction, TcpFlags)]) -> Vec<TcpState> {
        let mut s = start;
        steps
            .iter()
            .map(|&(d, f)| {
                s = tcp_transition(s, d, f);
                s
            })
            .collect()
    }

    #[test]
    fn test_discriminants_follow_the_kernel() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
            assert_eq!(TcpState::from_u8(i as u8), Some(*s));
        }
        assert_eq!(TcpState::from_u8(11), None);
        assert_eq!(TcpState::from_u8(255), None);
        assert_eq!(TcpState::default(), TcpState::None);
    }

    #[test]
    fn test_names_are_ipvsadm_s() {
        let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "NONE",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "SYNACK"
            ]
        );
        assert_eq!(std::format!("{}", TcpState::CloseWait), "CLOSE_WAIT");
        assert_eq!(UDP_STATE_NAME, "UDP");
    }

    #[test]
    fn test_predicates() {
        let active: Vec<TcpState> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_active())
            .collect();
        assert_eq!(
            active,
            [
                TcpState::Established,
                TcpState::SynSent,
                TcpState::SynRecv,
                TcpState::SynAck
            ]
        );
        let emb: Vec<TcpState> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_embryonic())
            .collect();
        assert_eq!(emb, [TcpState::SynRecv, TcpState::SynAck]);
        let reuse: Vec<TcpState> = TcpState::ALL
            .into_iter()
            .filter(|s| s.is_closing_for_reuse())
            .collect();
        assert_eq!(reuse, [TcpState::TimeWait, TcpState::Close]);
    }

    #[test]
    fn test_is_new_conn_expected() {
        for mode in 0..4u8 {
            for no_output in [false, true] {
                for s in TcpState::ALL {
                    let expected = match s {
                        TcpState::TimeWait | TcpState::Close => true,
                        TcpState::FinWait => no_output && mode & 2 != 0,
                        _ => false,
                    };
                    assert_eq!(
                        s.is_new_conn_expected(no_output, mode),
                        expected,
                        "{s} {mode}"
                    );
                }
            }
        }
    }

    #[test]
    fn test_event_priority() {
        // RST beats everything, SYN beats FIN and ACK, FIN beats ACK.
        let es = TcpState::Established;
        assert_eq!(
            tcp_transition(es, IN, RST | SYN | FIN | ACK),
            TcpState::Close
        );
        assert_eq!(
            tcp_transition(TcpState::None, IN, SYN | FIN | ACK),
            TcpState::SynRecv
        );
        assert_eq!(tcp_transition(es, IN, FIN | ACK), TcpState::CloseWait);
        assert_eq!(tcp_transition(es, IN, ACK | TcpFlags::PSH), es);
        // None of the four: CLOSE, as the kernel's set_tcp_state.
        for s in TcpState::ALL {
            for d in [IN, OUT, IO] {
                assert_eq!(tcp_transition(s, d, TcpFlags::NONE), TcpState::Close);
                assert_eq!(
                    tcp_transition(s, d, TcpFlags::PSH | TcpFlags::URG),
                    TcpState::Close
                );
                assert_eq!(tcp_transition_secure(s, d, TcpFlags::ECE), TcpState::Close);
            }
        }
    }

    /// Every row of the kernel's `tcp_states` (Linux 6.x, ip_vs_proto_tcp.c), written
    /// out again independently of the table above, in the kernel's column order.
    #[test]
    fn test_every_row_of_tcp_states() {
        use TcpState as S;
        let cols = TcpState::ALL;
        #[rustfmt::skip]
        let rows: [(Direction, TcpFlags, [S; 11]); 12] = [
            (IN, SYN, [S::SynRecv, S::Established, S::Established, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv]),
            (IN, FIN, [S::Close, S::CloseWait, S::SynSent, S::TimeWait, S::TimeWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::TimeWait]),
            (IN, ACK, [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::Established]),
            (IN, RST, [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::SynRecv]),
            (OUT, SYN, [S::SynSent, S::Established, S::SynSent, S::SynRecv, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::Listen, S::SynRecv]),
            (OUT, FIN, [S::TimeWait, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::TimeWait, S::LastAck, S::Listen, S::TimeWait]),
            (OUT, ACK, [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Established, S::Established]),
            (OUT, RST, [S::Close, S::Close, S::SynSent, S::Close, S::Close, S::TimeWait, S::Close, S::Close, S::Close, S::Close, S::Close]),
            (IO, SYN, [S::SynRecv, S::Established, S::Established, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv]),
            (IO, FIN, [S::Close, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::TimeWait]),
            (IO, ACK, [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::Established]),
            (IO, RST, [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::Close]),
        ];
        for (dir, flags, next) in rows {
            for (from, to) in cols.iter().zip(next) {
                assert_eq!(
                    tcp_transition(*from, dir, flags),
                    to,
                    "{dir:?} {flags:?} {from}"
                );
            }
        }
    }

    /// Every row of the kernel's `tcp_states_dos`.
    #[test]
    fn test_every_row_of_tcp_states_dos() {
        use TcpState as S;
        let cols = TcpState::ALL;
        #[rustfmt::skip]
        let rows: [(Direction, TcpFlags, [S; 11]); 12] = [
            (IN, SYN, [S::SynRecv, S::Established, S::Established, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynRecv, S::SynAck]),
            (IN, FIN, [S::Close, S::CloseWait, S::SynSent, S::TimeWait, S::TimeWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::SynAck]),
            (IN, ACK, [S::Established, S::Established, S::SynSent, S::SynRecv, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::SynAck]),
            (IN, RST, [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::Close]),
            (OUT, SYN, [S::SynSent, S::Established, S::SynSent, S::SynAck, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::SynSent, S::Listen, S::SynAck]),
            (OUT, FIN, [S::TimeWait, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::TimeWait, S::LastAck, S::Listen, S::TimeWait]),
            (OUT, ACK, [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Established, S::Established]),
            (OUT, RST, [S::Close, S::Close, S::SynSent, S::Close, S::Close, S::TimeWait, S::Close, S::Close, S::Close, S::Close, S::Close]),
            (IO, SYN, [S::SynAck, S::Established, S::Established, S::SynRecv, S::SynAck, S::SynAck, S::SynAck, S::SynAck, S::SynAck, S::SynAck, S::SynAck]),
            (IO, FIN, [S::Close, S::FinWait, S::SynSent, S::TimeWait, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::LastAck, S::Listen, S::TimeWait]),
            (IO, ACK, [S::Established, S::Established, S::SynSent, S::Established, S::FinWait, S::TimeWait, S::Close, S::CloseWait, S::Close, S::Listen, S::Established]),
            (IO, RST, [S::Close, S::Close, S::Close, S::SynRecv, S::Close, S::Close, S::Close, S::Close, S::LastAck, S::Listen, S::Close]),
        ];
        for (dir, flags, next) in rows {
            for (from, to) in cols.iter().zip(next) {
                assert_eq!(
                    tcp_transition_secure(*from, dir, flags),
                    to,
                    "{dir:?} {flags:?} {from}"
                );
            }
        }
    }

    #[test]
    fn test_nat_handshake_then_client_closes() {
        use TcpState as S;
        let states = run(
            S::None,
            &[
                (IN, SYN),        // client SYN
                (OUT, SYN | ACK), // server SYN/ACK
                (IN, ACK),        // client ACK
                (IN, ACK | TcpFlags::PSH),
                (OUT, ACK),
                (IN, FIN | ACK),  // client FIN
                (OUT, ACK),       // server ACKs it
                (OUT, FIN | ACK), // server FIN
                (IN, ACK),        // client's last ACK
            ],
        );
        assert_eq!(
            states,
            [
                S::SynRecv,
                S::SynRecv,
                S::Established,
                S::Established,
                S::Established,
                S::CloseWait,
                S::CloseWait,
                S::TimeWait,
                S::TimeWait
            ]
        );
    }

    #[test]
    fn test_nat_server_closes_first() {
        use TcpState as S;
        let states = run(
            S::Established,
            &[(OUT, FIN | ACK), (IN, ACK), (IN, FIN | ACK), (OUT, ACK)],
        );
        assert_eq!(states, [S::FinWait, S::FinWait, S::TimeWait, S::TimeWait]);
    }

    #[test]
    fn test_dr_input_only_lifecycle() {
        use TcpState as S;
        // The director sees only the client: SYN, ACK, data, FIN, last ACK.
        let states = run(
            S::None,
            &[
                (IO, SYN),
                (IO, ACK),
                (IO, ACK | TcpFlags::PSH),
                (IO, FIN | ACK),
                (IO, ACK),
            ],
        );
        assert_eq!(
            states,
            [
                S::SynRecv,
                S::Established,
                S::Established,
                S::FinWait,
                S::FinWait
            ]
        );
        // FIN_WAIT is where a DR close ends: conn_reuse_mode bit 1 lets a new SYN in.
        assert!(S::FinWait.is_new_conn_expected(true, 2));
        assert!(!S::FinWait.is_new_conn_expected(false, 3));
    }

    #[test]
    fn test_resets() {
        use TcpState as S;
        for d in [IN, OUT, IO] {
            assert_eq!(tcp_transition(S::Established, d, RST), S::Close);
            assert_eq!(tcp_transition(S::Established, d, RST | ACK), S::Close);
        }
        // A server RST during a NAT handshake, and the kernel's odd corners.
        assert_eq!(tcp_transition(S::SynRecv, OUT, RST), S::Close);
        assert_eq!(tcp_transition(S::SynRecv, IN, RST), S::SynRecv);
        assert_eq!(tcp_transition(S::TimeWait, OUT, RST), S::TimeWait);
        assert_eq!(tcp_transition(S::SynSent, OUT, RST), S::SynSent);
        assert_eq!(tcp_transition(S::LastAck, IN, RST), S::LastAck);
    }

    #[test]
    fn test_syn_on_time_wait() {
        use TcpState as S;
        // Port reuse: a new SYN from the client restarts the handshake on the same entry
        // (unless conn_reuse_mode reschedules it, see is_new_conn_expected).
        assert_eq!(tcp_transition(S::TimeWait, IN, SYN), S::SynRecv);
        assert_eq!(tcp_transition(S::TimeWait, IO, SYN), S::SynRecv);
        assert_eq!(tcp_transition(S::TimeWait, OUT, SYN), S::SynSent);
        assert_eq!(tcp_transition_secure(S::TimeWait, IO, SYN), S::SynAck);
        assert!(S::TimeWait.is_new_conn_expected(false, 1));
    }

    #[test]
    fn test_secure_tcp_keeps_a_flood_embryonic() {
        use TcpState as S;
        // DR under secure_tcp: a spoofed SYN leads to SYNACK, and a lone ACK does not
        // establish it from the input side.
        let s = tcp_transition_secure(S::None, IO, SYN);
        assert_eq!(s, S::SynAck);
        assert!(s.is_embryonic());
        assert_eq!(tcp_transition_secure(S::SynAck, IN, ACK), S::SynAck);
        // NAT: the server's SYN/ACK leads to SYNACK, the client's ACK keeps it there,
        // and the first segment the real server sends after its SYN/ACK establishes it.
        let s = tcp_transition_secure(S::None, IN, SYN);
        let s = tcp_transition_secure(s, OUT, SYN | ACK);
        assert_eq!(s, S::SynAck);
        let s = tcp_transition_secure(s, IN, ACK);
        assert_eq!(s, S::SynAck);
        assert_eq!(tcp_transition_secure(s, OUT, ACK), S::Established);
    }

    #[test]
    fn test_default_timeouts() {
        let t = Timeouts::default();
        assert_eq!(t, Timeouts::DEFAULT);
        let secs: Vec<u64> = TcpState::ALL.iter().map(|&s| t.tcp(s).secs()).collect();
        assert_eq!(secs, [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120]);
        assert_eq!(t.udp(), Duration::from_secs(300));
        assert_eq!(t.persistence(), Duration::from_secs(300));
        let (tcp, fin, udp) = t.get();
        assert_eq!((tcp.secs(), fin.secs(), udp.secs()), (900, 120, 300));
    }

    #[test]
    fn test_set_like_ipvsadm() {
        let mut t = Timeouts::DEFAULT;
        t.set(
            Duration::from_secs(3600),
            Duration::from_secs(30),
            Duration::from_secs(60),
        );
        assert_eq!(
            t.get(),
            (
                Duration::from_secs(3600),
                Duration::from_secs(30),
                Duration::from_secs(60)
            )
        );
        assert_eq!(t.tcp(TcpState::Established), Duration::from_secs(3600));
        assert_eq!(t.tcp(TcpState::FinWait), Duration::from_secs(30));
        assert_eq!(t.udp(), Duration::from_secs(60));
        // Nothing else moved.
        for s in TcpState::ALL {
            if s != TcpState::Established && s != TcpState::FinWait {
                assert_eq!(t.tcp(s), Timeouts::DEFAULT.tcp(s), "{s}");
            }
        }
        // Zero leaves a value unchanged.
        t.set(Duration::ZERO, Duration::from_secs(45), Duration::ZERO);
        assert_eq!(
            t.get(),
            (
                Duration::from_secs(3600),
                Duration::from_secs(45),
                Duration::from_secs(60)
            )
        );
        t.set(Duration::ZERO, Duration::ZERO, Duration::ZERO);
        assert_eq!(
            t.get(),
            (
                Duration::from_secs(3600),
                Duration::from_secs(45),
                Duration::from_secs(60)
            )
        );
    }

    #[test]
    fn test_setters() {
        let mut t = Timeouts::DEFAULT;
        t.set_tcp_state(TcpState::TimeWait, Duration::from_secs(1));
        t.set_udp(Duration::from_secs(5));
        t.set_persistence(Duration::from_secs(7));
        assert_eq!(t.tcp(TcpState::TimeWait), Duration::from_secs(1));
        assert_eq!(t.udp(), Duration::from_secs(5));
        assert_eq!(t.persistence(), Duration::from_secs(7));
        assert_eq!(t.tcp(TcpState::Close), Duration::from_secs(10));
    }

    fn any_dir() -> impl Strategy<Value = Direction> {
        prop_oneof![Just(IN), Just(OUT), Just(IO)]
    }

    proptest! {
        #[test]
        fn prop_any_sequence_yields_a_valid_state(
            start in 0u8..11,
            steps in proptest::collection::vec((any_dir(), any::<u8>(), any::<bool>()), 0..64),
        ) {
            let mut s = TcpState::from_u8(start).unwrap_or_default();
            for (d, bits, secure) in steps {
                let f = TcpFlags(bits);
                let next = if secure { tcp_transition_secure(s, d, f) } else { tcp_transition(s, d, f) };
                prop_assert_eq!(TcpState::from_u8(next as u8), Some(next));
                // Flags outside RST/SYN/FIN/ACK never matter.
                let core = TcpFlags(bits & 0x17);
                let again = if secure { tcp_transition_secure(s, d, core) } else { tcp_transition(s, d, core) };
                prop_assert_eq!(next, again);
                s = next;
            }
        }
    }
}
