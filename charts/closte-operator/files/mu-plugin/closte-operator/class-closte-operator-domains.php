<?php
/**
 * Domain names as the plugin compares and sends them.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * Normalisation and the "does this site need a Closte alias" rule. No IO.
 */
final class Closte_Operator_Domains {

	/**
	 * Lower case, no surrounding space, no trailing dot, no port.
	 *
	 * @param string $domain A domain as WordPress stores it.
	 * @return string
	 */
	public static function normalize( string $domain ): string {
		$domain = strtolower( trim( $domain ) );
		$colon  = strrpos( $domain, ':' );
		if ( false !== $colon && ctype_digit( substr( $domain, $colon + 1 ) ) ) {
			$domain = substr( $domain, 0, $colon );
		}
		return rtrim( $domain, '.' );
	}

	/**
	 * Whether a site's domain lies outside the network's base domain, so that
	 * Closte must know it as an alias. The base domain and the names under it
	 * are served by the Closte site itself; IP addresses never get an alias.
	 *
	 * @param string $domain The site's domain.
	 * @param string $base   The network's domain.
	 * @return bool
	 */
	public static function is_custom( string $domain, string $base ): bool {
		$domain = self::normalize( $domain );
		$base   = self::normalize( $base );
		if ( '' === $domain || $domain === $base ) {
			return false;
		}
		if ( '' !== $base && str_ends_with( $domain, '.' . $base ) ) {
			return false;
		}
		return false === filter_var( $domain, FILTER_VALIDATE_IP );
	}

	/**
	 * The domain as one path segment of the native door (`*` as `%2A`).
	 *
	 * @param string $domain A normalised domain.
	 * @return string
	 */
	public static function segment( string $domain ): string {
		return rawurlencode( $domain );
	}

	/**
	 * Sorted, normalised, without duplicates or empty names.
	 *
	 * @param array<int, string> $domains Domains.
	 * @return array<int, string>
	 */
	public static function set( array $domains ): array {
		$set = array();
		foreach ( $domains as $domain ) {
			$domain = self::normalize( (string) $domain );
			if ( '' !== $domain ) {
				$set[ $domain ] = true;
			}
		}
		$set = array_keys( $set );
		sort( $set, SORT_STRING );
		return $set;
	}

	/**
	 * A Kubernetes-style duration ("300s", "5m", "1m30s", "1h") in whole
	 * seconds, or null when it is not one.
	 *
	 * @param string $duration As a MappedDomain's spec.checkInterval holds it.
	 * @return int|null
	 */
	public static function seconds( string $duration ): ?int {
		if ( ! preg_match( '/^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/', trim( $duration ), $parts ) || '' === trim( $duration ) ) {
			return null;
		}
		return 3600 * (int) ( $parts[1] ?? 0 ) + 60 * (int) ( $parts[2] ?? 0 ) + (int) ( $parts[3] ?? 0 );
	}

	/**
	 * Every site's set as the sync and the site hooks use it: only sites that
	 * exist, only domains outside the network's, each domain with one site.
	 * Each site's primary domain is claimed first, then the other domains in
	 * site order, so a stale mapping never takes a domain from the site that
	 * WordPress serves it for.
	 *
	 * @param array                   $listed  Site id => domains (from the tables and the filter).
	 * @param array<int, string>      $primary Site id => its own domain (every site that exists).
	 * @param string                  $base    The network's domain.
	 * @return array<int, array<int, string>>
	 */
	public static function desired( array $listed, array $primary, string $base ): array {
		$desired = array_fill_keys( array_keys( $primary ), array() );
		$owner   = array();
		$claim   = function ( int $site_id, $domain ) use ( &$desired, &$owner, $base ): void {
			$domain = is_string( $domain ) ? self::normalize( $domain ) : '';
			if ( isset( $desired[ $site_id ] ) && ! isset( $owner[ $domain ] ) && self::is_custom( $domain, $base ) ) {
				$owner[ $domain ]       = $site_id;
				$desired[ $site_id ][] = $domain;
			}
		};
		ksort( $primary );
		foreach ( $primary as $site_id => $domain ) {
			$claim( (int) $site_id, $domain );
		}
		ksort( $listed );
		foreach ( $listed as $site_id => $domains ) {
			foreach ( is_array( $domains ) ? $domains : array() as $domain ) {
				$claim( (int) $site_id, $domain );
			}
		}
		return array_map( array( self::class, 'set' ), $desired );
	}

	/**
	 * Which site claims each domain.
	 *
	 * @param array<int, array<int, string>> $desired From desired().
	 * @return array<string, int> Domain => site id.
	 */
	public static function claims( array $desired ): array {
		$claims = array();
		foreach ( $desired as $site_id => $domains ) {
			foreach ( $domains as $domain ) {
				$claims[ $domain ] = (int) $site_id;
			}
		}
		return $claims;
	}

	/**
	 * A check interval as set somewhere (Ultimate Multisite's setting, the
	 * screen's field): whole seconds within Ultimate Multisite's range;
	 * outside it, the nearest bound and why.
	 *
	 * @param mixed  $value  The setting.
	 * @param string $source Where it comes from.
	 * @return array{seconds: int|null, source: string, error: string}
	 */
	public static function interval( mixed $value, string $source ): array {
		$min = Closte_Operator_Plugin::MIN_INTERVAL;
		$max = Closte_Operator_Plugin::MAX_INTERVAL;
		if ( ! is_numeric( $value ) ) {
			return array(
				'seconds' => $max,
				'source'  => $source,
				/* translators: 1: the value set, 2: the seconds used instead */
				'error'   => sprintf( __( 'the DNS check interval "%1$s" is not a number; %2$d s is used', 'closte-operator' ), is_scalar( $value ) ? (string) $value : gettype( $value ), $max ),
			);
		}
		$seconds = (int) round( (float) $value );
		$bounded = max( $min, min( $max, $seconds ) );
		return array(
			'seconds' => $bounded,
			'source'  => $source,
			/* translators: 1: the seconds set, 2: minimum, 3: maximum, 4: the seconds used */
			'error'   => $bounded === $seconds ? '' : sprintf( __( 'the DNS check interval %1$d s is outside %2$d..%3$d s; %4$d s is used', 'closte-operator' ), $seconds, $min, $max, $bounded ),
		);
	}
}
