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
}
