<?php
/**
 * What the network-admin screen and Site Health say: stage labels, the next
 * step for each state, certificate expiry, paging and filtering of the
 * domain list, and the texts of the notices.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Pure: arrays and results in, texts and numbers out. Nothing here reads
 * WordPress's state or talks to the sidecar; only the translation functions
 * are WordPress's.
 */
final class Closte_Operator_Screen {

	/** Domains per page of the screen's table. */
	const PER_PAGE = 50;

	/** A certificate that ends within this many days is highlighted. */
	const EXPIRY_DAYS = 14;

	/** The DNS check interval's bounds, in seconds. */
	const INTERVAL_MIN = 10;
	const INTERVAL_MAX = 300;

	/** The filters of the domain list. */
	const FILTERS = array( 'all', 'not-ready', 'expiring' );

	/** The sidecar's container in the pod (the README's and the chart's name). */
	const CONTAINER = 'closte-sidecar';

	/**
	 * A stage as people read it.
	 *
	 * @param string $stage A MappedDomain stage ('' when the controller has not set one yet).
	 * @return string
	 */
	public static function stage_label( string $stage ): string {
		switch ( $stage ) {
			case '':
				return __( 'Not checked yet', 'closte-operator' );
			case 'pending':
				return __( 'Pending', 'closte-operator' );
			case 'checking-dns':
				return __( 'Checking DNS', 'closte-operator' );
			case 'checking-ssl-cert':
				return __( 'Checking the certificate', 'closte-operator' );
			case 'done':
				return __( 'Done', 'closte-operator' );
			case 'failed':
				return __( 'Failed', 'closte-operator' );
			case 'ssl-failed':
				return __( 'Certificate failed', 'closte-operator' );
		}
		return $stage;
	}

	/**
	 * A string field of a listing entry, or ''.
	 *
	 * @param array  $entry A Domain from GET /v1/domains.
	 * @param string $field Field name.
	 * @return string
	 */
	public static function field( array $entry, string $field ): string {
		return isset( $entry[ $field ] ) && is_string( $entry[ $field ] ) ? $entry[ $field ] : '';
	}

	/**
	 * The condition of a type in a listing entry, or null.
	 *
	 * @param array  $entry A Domain from GET /v1/domains.
	 * @param string $type  Condition type (Registered, DNSReady, CertificateReady, Ready).
	 * @return array|null
	 */
	public static function condition( array $entry, string $type ): ?array {
		foreach ( isset( $entry['conditions'] ) && is_array( $entry['conditions'] ) ? $entry['conditions'] : array() as $condition ) {
			if ( is_array( $condition ) && ( $condition['type'] ?? null ) === $type ) {
				return $condition;
			}
		}
		return null;
	}

	/**
	 * When the certificate ends: `time` (Unix), `days` left (negative once
	 * expired), `expired`, and `soon` (ends within EXPIRY_DAYS, or ended);
	 * null without a readable notAfter.
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @param int   $now   Unix time.
	 * @return array{time: int, days: int, expired: bool, soon: bool}|null
	 */
	public static function expiry( array $entry, int $now ): ?array {
		$not_after = isset( $entry['certificate'] ) && is_array( $entry['certificate'] ) ? self::field( $entry['certificate'], 'notAfter' ) : '';
		$time      = '' === $not_after ? false : strtotime( $not_after );
		if ( false === $time ) {
			return null;
		}
		$left = $time - $now;
		return array(
			'time'    => $time,
			'days'    => (int) floor( $left / 86400 ),
			'expired' => $left <= 0,
			'soon'    => $left < self::EXPIRY_DAYS * 86400,
		);
	}

	/**
	 * Whether the certificate ends within EXPIRY_DAYS (or has ended).
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @param int   $now   Unix time.
	 * @return bool
	 */
	public static function expiring( array $entry, int $now ): bool {
		// Kubernetes writes times as YYYY-MM-DDTHH:MM:SSZ; those compare as
		// strings, 10x faster than strtotime() on a list of 10,000.
		$not_after = isset( $entry['certificate'] ) && is_array( $entry['certificate'] ) ? self::field( $entry['certificate'], 'notAfter' ) : '';
		if ( 20 === strlen( $not_after ) && 'Z' === $not_after[19] && 'T' === $not_after[10] && preg_match( '/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/', $not_after ) ) {
			static $limits = array();
			if ( ! isset( $limits[ $now ] ) ) {
				$limits = array( $now => gmdate( 'Y-m-d\TH:i:s\Z', $now + self::EXPIRY_DAYS * 86400 ) );
			}
			return strcmp( $not_after, $limits[ $now ] ) < 0;
		}
		$expiry = self::expiry( $entry, $now );
		return null !== $expiry && $expiry['soon'];
	}

	/**
	 * Where the domain's DNS must point: the entry's expected targets when the
	 * listing carries them, else those the DNSReady message names
	 * ("... expected one of A, B").
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @return array<int, string>
	 */
	public static function dns_targets( array $entry ): array {
		foreach ( array( $entry['expectedTargets'] ?? null, $entry['dns']['expected'] ?? null ) as $targets ) {
			if ( is_array( $targets ) && array() !== $targets ) {
				return array_values( array_filter( array_map( 'strval', $targets ) ) );
			}
		}
		$dns     = self::condition( $entry, 'DNSReady' );
		$message = null === $dns ? '' : (string) ( $dns['message'] ?? '' );
		$at      = strpos( $message, 'expected one of ' );
		if ( false === $at ) {
			return array();
		}
		$list = rtrim( trim( substr( $message, $at + strlen( 'expected one of ' ) ) ), '.' );
		return array_values( array_filter( array_map( 'trim', explode( ',', $list ) ) ) );
	}

	/**
	 * The command that explains a MappedDomain in full.
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @return string
	 */
	public static function status_command( array $entry ): string {
		$name = self::field( $entry, 'name' );
		return 'closte-operator status ' . ( '' === $name ? self::field( $entry, 'domain' ) : $name );
	}

	/**
	 * Whether the domain is served through a proxy or CDN: it proved this
	 * network through one (DNSReady reason Proxied), so the certificate
	 * recorded is the proxy's (certificate.servedBy Proxy).
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @return bool
	 */
	public static function proxied( array $entry ): bool {
		if ( isset( $entry['certificate'] ) && is_array( $entry['certificate'] ) && 'Proxy' === self::field( $entry['certificate'], 'servedBy' ) ) {
			return true;
		}
		$dns = self::condition( $entry, 'DNSReady' );
		return null !== $dns && 'True' === ( $dns['status'] ?? '' ) && 'Proxied' === ( $dns['reason'] ?? '' );
	}

	/**
	 * What a proxied domain's certificate is; '' when the domain is not proxied.
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @return string
	 */
	public static function proxy_note( array $entry ): string {
		return self::proxied( $entry )
			? __( 'Served through a proxy or CDN: the certificate visitors see is the proxy\'s, so Closte\'s own certificate cannot be seen from outside.', 'closte-operator' )
			: '';
	}

	/**
	 * Who issued the certificate shown, marked as the proxy's when it is; ''
	 * without one.
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @return string
	 */
	public static function issuer( array $entry ): string {
		$issuer = isset( $entry['certificate'] ) && is_array( $entry['certificate'] ) ? self::field( $entry['certificate'], 'issuer' ) : '';
		if ( '' === $issuer || ! self::proxied( $entry ) ) {
			return $issuer;
		}
		return sprintf(
			/* translators: %s: the certificate's issuer */
			__( 'the proxy\'s certificate, issued by %s', 'closte-operator' ),
			$issuer
		);
	}

	/**
	 * What a network administrator does next about one domain; for a ready
	 * domain served through a proxy, what that means for its certificate;
	 * '' when nothing (ready, certificate not ending soon).
	 *
	 * @param array $entry A Domain from GET /v1/domains.
	 * @param int   $now   Unix time.
	 * @return string
	 */
	public static function next_step( array $entry, int $now ): string {
		$domain  = self::field( $entry, 'domain' );
		$stage   = self::field( $entry, 'stage' );
		$ready   = ! empty( $entry['ready'] );
		$reason  = self::field( $entry, 'reason' );
		$message = self::field( $entry, 'message' );
		$said    = trim( implode( ': ', array_filter( array( $reason, $message ) ) ) );
		$command = self::status_command( $entry );
		$dns     = self::condition( $entry, 'DNSReady' );
		$dns_bad = null !== $dns && 'False' === ( $dns['status'] ?? '' ) && in_array( $stage, array( 'checking-dns', 'failed' ), true );
		$proxied = self::proxied( $entry );

		if ( 'failed' === $stage || 'ssl-failed' === $stage ) {
			$step = sprintf(
				/* translators: 1: why it failed (reason: message), 2: a command */
				__( 'Failed: %1$s. For the details and what to fix, run %2$s.', 'closte-operator' ),
				'' === $said ? __( 'no reason given', 'closte-operator' ) : $said,
				$command
			);
			return $dns_bad ? self::dns_step( $domain, $entry ) . ' ' . $step : $step;
		}
		if ( 'checking-dns' === $stage ) {
			return self::dns_step( $domain, $entry );
		}
		if ( 'checking-ssl-cert' === $stage && $proxied ) {
			return sprintf(
				/* translators: 1: domain, 2: what the last check said */
				__( '%1$s reaches this network through a proxy or CDN, and the certificate visitors see is the proxy\'s, not Closte\'s: fix the certificate at the proxy or CDN (last check: %2$s).', 'closte-operator' ),
				$domain,
				'' === $said ? __( 'none yet', 'closte-operator' ) : $said
			);
		}
		if ( 'checking-ssl-cert' === $stage ) {
			return sprintf(
				/* translators: 1: domain, 2: what the last check said */
				__( 'DNS is right; waiting for Closte to issue a certificate for %1$s. Nothing to do unless it stays here (last check: %2$s).', 'closte-operator' ),
				$domain,
				'' === $said ? __( 'none yet', 'closte-operator' ) : $said
			);
		}
		if ( 'pending' === $stage || '' === $stage ) {
			if ( '' === $reason || 'Progressing' === $reason ) {
				return __( 'Waiting for the controller to register it on Closte; nothing to do yet.', 'closte-operator' );
			}
		}
		if ( ! $ready ) {
			return sprintf(
				/* translators: 1: why it is not ready (reason: message), 2: a command */
				__( 'Not ready: %1$s. For the details, run %2$s.', 'closte-operator' ),
				'' === $said ? __( 'no reason given', 'closte-operator' ) : $said,
				$command
			);
		}
		$expiry = self::expiry( $entry, $now );
		if ( $proxied && null !== $expiry && $expiry['expired'] ) {
			return sprintf(
				/* translators: %s: domain */
				__( 'The proxy\'s certificate for %s has expired: the proxy or CDN in front of it must renew it, not Closte.', 'closte-operator' ),
				$domain
			);
		}
		if ( $proxied && null !== $expiry && $expiry['soon'] ) {
			return sprintf(
				/* translators: 1: domain, 2: number of days */
				_n( 'The proxy\'s certificate for %1$s expires in %2$s day: the proxy or CDN in front of it renews it, not Closte; check it there if it does not change soon.', 'The proxy\'s certificate for %1$s expires in %2$s days: the proxy or CDN in front of it renews it, not Closte; check it there if it does not change soon.', max( 0, $expiry['days'] ), 'closte-operator' ),
				$domain,
				number_format_i18n( max( 0, $expiry['days'] ) )
			);
		}
		if ( null !== $expiry && $expiry['expired'] ) {
			return sprintf(
				/* translators: %s: a command */
				__( 'The certificate has expired and no renewed one has appeared. Run %s.', 'closte-operator' ),
				$command
			);
		}
		if ( null !== $expiry && $expiry['soon'] ) {
			return sprintf(
				/* translators: 1: number of days, 2: a command */
				_n( 'The certificate expires in %1$s day and no renewed one has appeared yet; Closte renews it by itself, so check with %2$s if it does not change soon.', 'The certificate expires in %1$s days and no renewed one has appeared yet; Closte renews it by itself, so check with %2$s if it does not change soon.', max( 0, $expiry['days'] ), 'closte-operator' ),
				number_format_i18n( max( 0, $expiry['days'] ) ),
				$command
			);
		}
		return self::proxy_note( $entry );
	}

	/**
	 * Where DNS must point, or what to fix when the proof request failed
	 * (DNSReady reason Proof*), and what the last check saw.
	 *
	 * @param string $domain The domain.
	 * @param array  $entry  A Domain from GET /v1/domains.
	 * @return string
	 */
	private static function dns_step( string $domain, array $entry ): string {
		$targets = self::dns_targets( $entry );
		$dns     = self::condition( $entry, 'DNSReady' );
		$seen    = null === $dns ? '' : trim( (string) ( $dns['message'] ?? '' ) );
		if ( '' === $seen ) {
			$seen = __( 'not checked yet', 'closte-operator' );
		}
		switch ( null === $dns ? '' : (string) ( $dns['reason'] ?? '' ) ) {
			case 'ProofMismatch':
				return sprintf(
					/* translators: 1: domain, 2: what the last check saw */
					__( '%1$s answers another WordPress network\'s proof: its DNS, or the origin of the proxy or CDN in front of it, points at another WordPress network. Point it at this network. Last check: %2$s.', 'closte-operator' ),
					$domain,
					rtrim( $seen, '.' )
				);
			case 'ProofNotFound':
			case 'ProofUnexpected':
				return sprintf(
					/* translators: 1: domain, 2: a URL path, 3: what the last check saw */
					__( 'The proxy or host in front of %1$s does not pass %2$s on to this network. Check the proxy\'s origin (it must be this network) and its page rules for that path. Last check: %3$s.', 'closte-operator' ),
					$domain,
					'/.well-known/closte-operator/',
					rtrim( $seen, '.' )
				);
			case 'ProofUnreachable':
				return sprintf(
					/* translators: 1: domain, 2: what the last check saw */
					__( '%1$s cannot be reached over HTTPS: check its DNS and that the proxy or host in front of it answers HTTPS for it. Last check: %2$s.', 'closte-operator' ),
					$domain,
					rtrim( $seen, '.' )
				);
		}
		if ( array() === $targets ) {
			return sprintf(
				/* translators: 1: domain, 2: what the last DNS check saw */
				__( 'Point %1$s at this site\'s address with an A/AAAA record or a CNAME at its DNS provider. Last check: %2$s.', 'closte-operator' ),
				$domain,
				rtrim( $seen, '.' )
			);
		}
		return sprintf(
			/* translators: 1: domain, 2: the expected targets, 3: what the last DNS check saw */
			__( 'Point %1$s at %2$s (an A/AAAA record, or a CNAME to a name) at its DNS provider. Last check: %3$s.', 'closte-operator' ),
			$domain,
			implode( ', ', $targets ),
			rtrim( $seen, '.' )
		);
	}

	/**
	 * What to do when the sidecar's list could not be read.
	 *
	 * @param Closte_Operator_Result $listing    The answer to GET /v1/domains.
	 * @param string                 $url        The sidecar URL.
	 * @param string                 $token_file CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE, '' when not defined.
	 * @return string
	 */
	public static function listing_step( Closte_Operator_Result $listing, string $url, string $token_file = '' ): string {
		if ( 401 === $listing->status || 403 === $listing->status ) {
			return sprintf(
				/* translators: 1: where the token is read from, 2: the sidecar's container name */
				__( 'The sidecar refuses WordPress\'s token. The token WordPress reads from %1$s must be the sidecar\'s own (its --token-file): mount the same Secret in the WordPress container and in the %2$s container (both read it again after a change; no restart is needed).', 'closte-operator' ),
				'' === $token_file ? 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' : sprintf( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE (%s)', $token_file ),
				self::CONTAINER
			);
		}
		if ( ! $listing->reached() ) {
			return sprintf(
				/* translators: 1: the sidecar URL, 2: a command, 3: the sidecar's container name */
				__( 'Nothing answers at %1$s. Check the sidecar container: %2$s shows why it stopped or did not start; CLOSTE_OPERATOR_SIDECAR_URL must be the address it listens on (--listen). Changes wait in the queue meanwhile.', 'closte-operator' ),
				$url,
				'kubectl logs POD -c ' . self::CONTAINER,
				self::CONTAINER
			);
		}
		return sprintf(
			/* translators: 1: the answer, 2: a command */
			__( 'The sidecar answered %1$s. Its log says why: %2$s.', 'closte-operator' ),
			$listing->message(),
			'kubectl logs POD -c ' . self::CONTAINER
		);
	}

	/**
	 * The screen's query, from request arguments: `filter`, `paged` (from 1)
	 * and `s` (a part of a domain).
	 *
	 * @param array $args Request arguments (unslashed).
	 * @return array{filter: string, page: int, search: string}
	 */
	public static function query( array $args ): array {
		$filter = isset( $args['filter'] ) && is_string( $args['filter'] ) && in_array( $args['filter'], self::FILTERS, true ) ? $args['filter'] : 'all';
		$page   = isset( $args['paged'] ) && is_scalar( $args['paged'] ) ? (int) $args['paged'] : 1;
		$search = isset( $args['s'] ) && is_string( $args['s'] ) ? strtolower( trim( $args['s'] ) ) : '';
		return array(
			'filter' => $filter,
			'page'   => max( 1, $page ),
			'search' => substr( preg_replace( '/[^a-z0-9.*-]/', '', $search ) ?? '', 0, 253 ),
		);
	}

	/**
	 * One page of the domain list: the entries of the filter (and search) on
	 * page `page`, with the counts each filter would show. One pass over the
	 * list, then a slice; the page is clamped to the last one.
	 *
	 * @param array $domains  The `domains` array of GET /v1/domains (in the sidecar's order, by domain).
	 * @param array $query    From query().
	 * @param int   $now      Unix time.
	 * @param int   $per_page Entries per page.
	 * @return array{rows: array<int, array>, total: int, page: int, pages: int, per_page: int, first: int, counts: array<string, int>}
	 */
	public static function page( array $domains, array $query, int $now, int $per_page = self::PER_PAGE ): array {
		$per_page = max( 1, $per_page );
		$filter   = $query['filter'] ?? 'all';
		$search   = (string) ( $query['search'] ?? '' );
		$counts   = array(
			'all'       => 0,
			'not-ready' => 0,
			'expiring'  => 0,
		);
		$matches  = array();
		foreach ( $domains as $entry ) {
			if ( ! is_array( $entry ) ) {
				continue;
			}
			if ( '' !== $search && ! str_contains( self::field( $entry, 'domain' ), $search ) ) {
				continue;
			}
			$in = array( 'all' => true );
			if ( empty( $entry['ready'] ) ) {
				$in['not-ready'] = true;
			}
			if ( isset( $entry['certificate'] ) && self::expiring( $entry, $now ) ) {
				$in['expiring'] = true;
			}
			foreach ( $in as $name => $yes ) {
				++$counts[ $name ];
			}
			if ( isset( $in[ $filter ] ) ) {
				$matches[] = $entry;
			}
		}
		$total = count( $matches );
		$pages = max( 1, (int) ceil( $total / $per_page ) );
		$page  = min( max( 1, (int) ( $query['page'] ?? 1 ) ), $pages );
		$first = ( $page - 1 ) * $per_page;
		return array(
			'rows'     => array_slice( $matches, $first, $per_page ),
			'total'    => $total,
			'page'     => $page,
			'pages'    => $pages,
			'per_page' => $per_page,
			'first'    => $first,
			'counts'   => $counts,
		);
	}

	/**
	 * The site ids of a page's rows, each once.
	 *
	 * @param array<int, array> $rows Listing entries.
	 * @return array<int, int>
	 */
	public static function site_ids( array $rows ): array {
		$ids = array();
		foreach ( $rows as $entry ) {
			if ( isset( $entry['siteId'] ) && is_int( $entry['siteId'] ) && $entry['siteId'] > 0 ) {
				$ids[ $entry['siteId'] ] = $entry['siteId'];
			}
		}
		return array_values( $ids );
	}

	/**
	 * The notice after "Sync now": never a count of zero; "nothing to
	 * change" when nothing changed; the sites left for the follow-up run
	 * when the batch did not finish.
	 *
	 * @param array $summary The sync summary (ok, error, sites, written, queued, failed, retried, complete, remaining, intervals).
	 * @return array{type: string, text: string}
	 */
	public static function sync_notice( array $summary ): array {
		if ( empty( $summary['ok'] ) ) {
			return array(
				'type' => 'error',
				'text' => sprintf(
					/* translators: %s: why the sync failed */
					__( 'Sync failed: %s. Nothing was written; the next run tries again.', 'closte-operator' ),
					'' === (string) ( $summary['error'] ?? '' ) ? __( 'no reason given', 'closte-operator' ) : (string) $summary['error']
				),
			);
		}
		$count   = fn( $value ) => is_numeric( $value ) ? max( 0, (int) $value ) : 0;
		$retried = isset( $summary['retried'] ) && is_array( $summary['retried'] ) ? $summary['retried'] : array();
		$sites   = $count( $summary['sites'] ?? 0 );
		$parts   = array();
		$add     = function ( int $n, string $text ) use ( &$parts ): void {
			if ( $n > 0 ) {
				$parts[] = sprintf( $text, number_format_i18n( $n ) );
			}
		};
		$written = $count( $summary['written'] ?? 0 );
		/* translators: %s: number of sites */
		$add( $written, _n( '%s site written', '%s sites written', $written, 'closte-operator' ) );
		$queued = $count( $summary['queued'] ?? 0 );
		/* translators: %s: number of sites */
		$add( $queued, _n( '%s site queued for a retry', '%s sites queued for a retry', $queued, 'closte-operator' ) );
		$failed = $count( $summary['failed'] ?? 0 );
		/* translators: %s: number of sites */
		$add( $failed, _n( '%s site rejected by the sidecar', '%s sites rejected by the sidecar', $failed, 'closte-operator' ) );
		$done = $count( $retried['done'] ?? 0 );
		/* translators: %s: number of changes */
		$add( $done, _n( '%s waiting change delivered', '%s waiting changes delivered', $done, 'closte-operator' ) );
		$still = $count( $retried['queued'] ?? 0 );
		/* translators: %s: number of changes */
		$add( $still, _n( '%s waiting change still waiting', '%s waiting changes still waiting', $still, 'closte-operator' ) );
		$dropped = $count( $retried['dropped'] ?? 0 );
		/* translators: %s: number of changes */
		$add( $dropped, _n( '%s waiting change given up', '%s waiting changes given up', $dropped, 'closte-operator' ) );
		$intervals = $count( $summary['intervals'] ?? 0 );
		/* translators: %s: number of domains */
		$add( $intervals, _n( '%s domain given the new DNS check interval', '%s domains given the new DNS check interval', $intervals, 'closte-operator' ) );

		if ( array() === $parts ) {
			$text = sprintf(
				/* translators: %s: number of sites */
				_n( 'Sync checked %s site: nothing to change.', 'Sync checked %s sites: nothing to change.', $sites, 'closte-operator' ),
				number_format_i18n( $sites )
			);
		} else {
			$text = sprintf(
				/* translators: 1: number of sites, 2: what changed, a list */
				_n( 'Sync checked %1$s site: %2$s.', 'Sync checked %1$s sites: %2$s.', $sites, 'closte-operator' ),
				number_format_i18n( $sites ),
				implode( ', ', $parts )
			);
		}
		$remaining = $count( $summary['remaining'] ?? 0 );
		if ( array_key_exists( 'complete', $summary ) && ! $summary['complete'] ) {
			$text .= ' ' . ( $remaining > 0
				? sprintf(
					/* translators: %s: number of sites */
					_n( '%s site remains; a follow-up run continues in the background.', '%s sites remain; a follow-up run continues in the background.', $remaining, 'closte-operator' ),
					number_format_i18n( $remaining )
				)
				: __( 'Some sites remain; a follow-up run continues in the background.', 'closte-operator' ) );
		}
		return array(
			'type' => $failed > 0 || $dropped > 0 ? 'warning' : 'success',
			'text' => $text,
		);
	}

	/**
	 * Reads the DNS check interval field: '' clears it (the default applies),
	 * else a whole number of seconds in INTERVAL_MIN..INTERVAL_MAX.
	 *
	 * @param string $raw What was submitted.
	 * @return array{ok: bool, seconds: int|null, error: string}
	 */
	public static function interval_input( string $raw ): array {
		$raw = trim( $raw );
		if ( '' === $raw ) {
			return array(
				'ok'      => true,
				'seconds' => null,
				'error'   => '',
			);
		}
		if ( ! preg_match( '/^\d{1,6}$/', $raw ) || (int) $raw < self::INTERVAL_MIN || (int) $raw > self::INTERVAL_MAX ) {
			return array(
				'ok'      => false,
				'seconds' => null,
				'error'   => sprintf(
					/* translators: 1: what was entered, 2: minimum seconds, 3: maximum seconds */
					__( 'Not saved: the DNS check interval must be a whole number of seconds from %2$s to %3$s (got "%1$s").', 'closte-operator' ),
					substr( $raw, 0, 20 ),
					number_format_i18n( self::INTERVAL_MIN ),
					number_format_i18n( self::INTERVAL_MAX )
				),
			);
		}
		return array(
			'ok'      => true,
			'seconds' => (int) $raw,
			'error'   => '',
		);
	}

	/**
	 * Where the DNS check interval comes from, in words.
	 *
	 * @param array $interval From check_interval(): seconds, source, error.
	 * @return string
	 */
	public static function interval_source( array $interval ): string {
		$seconds = isset( $interval['seconds'] ) && is_int( $interval['seconds'] ) ? $interval['seconds'] : null;
		switch ( $interval['source'] ?? '' ) {
			case 'ultimate-multisite':
				return sprintf(
					/* translators: %s: number of seconds */
					__( 'Set by Ultimate Multisite\'s "DNS Check Interval" setting (%s s), which wins while Ultimate Multisite is active: change it there.', 'closte-operator' ),
					null === $seconds ? '?' : number_format_i18n( $seconds )
				);
			case 'setting':
				return sprintf(
					/* translators: %s: number of seconds */
					__( 'Set here: every mapped domain is checked every %s seconds while it is not ready.', 'closte-operator' ),
					null === $seconds ? '?' : number_format_i18n( $seconds )
				);
		}
		return __( 'Not set: the sidecar\'s default (its --check-interval) applies.', 'closte-operator' );
	}

	/**
	 * A queue operation in words.
	 *
	 * @param array $op Operation (put, delete or site).
	 * @return string
	 */
	public static function describe( array $op ): string {
		switch ( $op['op'] ?? '' ) {
			case 'put':
				return null === ( $op['site'] ?? null )
					/* translators: %s: domain */
					? sprintf( __( 'add %s', 'closte-operator' ), (string) $op['domain'] )
					/* translators: 1: domain, 2: site id */
					: sprintf( __( 'add %1$s (site #%2$d)', 'closte-operator' ), (string) $op['domain'], (int) $op['site'] );
			case 'delete':
				/* translators: %s: domain */
				return sprintf( __( 'remove %s', 'closte-operator' ), (string) ( $op['domain'] ?? '' ) );
			case 'site':
				$domains = isset( $op['domains'] ) && is_array( $op['domains'] ) ? $op['domains'] : array();
				return sprintf(
					/* translators: 1: site id, 2: its domains */
					__( 'site #%1$d: %2$s', 'closte-operator' ),
					(int) ( $op['site'] ?? 0 ),
					array() === $domains ? __( '(no domains)', 'closte-operator' ) : implode( ', ', $domains )
				);
		}
		return '?';
	}

	/**
	 * The notice after Retry on a waiting change.
	 *
	 * @param string                      $what   The change in words.
	 * @param Closte_Operator_Result|null $result What the retry got; null when the change was no longer waiting.
	 * @return array{type: string, text: string}
	 */
	public static function retry_notice( string $what, ?Closte_Operator_Result $result ): array {
		if ( null === $result ) {
			return array(
				'type' => 'warning',
				/* translators: %s: the change */
				'text' => sprintf( __( 'Not retried: %s is no longer waiting.', 'closte-operator' ), $what ),
			);
		}
		if ( $result->ok() ) {
			return array(
				'type' => 'success',
				/* translators: %s: the change */
				'text' => sprintf( __( 'Delivered: %s.', 'closte-operator' ), $what ),
			);
		}
		if ( $result->retryable() ) {
			return array(
				'type' => 'warning',
				/* translators: 1: the change, 2: the answer */
				'text' => sprintf( __( 'Still waiting: %1$s (%2$s). It stays in the queue and is retried automatically.', 'closte-operator' ), $what, $result->message() ),
			);
		}
		return array(
			'type' => 'error',
			/* translators: 1: the change, 2: the answer */
			'text' => sprintf( __( 'Rejected: %1$s (%2$s). It moved to the rejected changes.', 'closte-operator' ), $what, $result->message() ),
		);
	}
}
