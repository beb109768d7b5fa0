//! Wire fidelity of the MSDK requests (issue 12): what the sandbox received,
//! member by member, against what the seed's request examples send.
