<?php
/**
 * Where the sidecar is and how to authenticate to it, from wp-config.php constants.
 *
 * @package Closte_Operator
 */

defined( 'ABSPATH' ) || exit;

/**
 * The plugin's settings. Nothing is stored in the database: the constants are
 * the only source, so a database dump never holds the token.
 */
final class Closte_Operator_Config {

	/** Where the sidecar listens when CLOSTE_OPERATOR_SIDECAR_URL is not set. */
	const DEFAULT_URL = 'http://127.0.0.1:8087';

	/** Seconds a request to the sidecar may take, connection included. */
	const DEFAULT_TIMEOUT = 2.0;

	/**
	 * Seconds a write may take: a site's set is one GET and one write per
	 * domain on the API server, each answered once the sidecar's cache shows
	 * it, so a large set takes longer than a read.
	 */
	const DEFAULT_WRITE_TIMEOUT = 15.0;

	/**
	 * Why the token must not be sent to `$url` ('' when it may): the sidecar
	 * is reached over loopback, or else over https only.
	 *
	 * @var string
	 */
	public readonly string $url_error;

	/**
	 * Constructor.
	 *
	 * @param string $url         Base URL of the sidecar, without a trailing slash.
	 * @param string $token       The sidecar token ('' when none could be read).
	 * @param float  $timeout     Seconds per request to the sidecar.
	 * @param string $token_error Why there is no token, '' when there is one.
	 * @param string $client_key  CLOSTE_CLIENT_API_KEY: the placeholder that the Closte client sends and the router expects ('' when not defined).
	 * @param float  $write_timeout Seconds per write to the native door (never less than `$timeout`).
	 */
	public function __construct(
		public readonly string $url,
		public readonly string $token,
		public readonly float $timeout = self::DEFAULT_TIMEOUT,
		public readonly string $token_error = '',
		public readonly string $client_key = '',
		public readonly float $write_timeout = self::DEFAULT_WRITE_TIMEOUT
	) {
		$this->url_error = self::url_problem( $url );
	}

	/**
	 * Why a sidecar URL may not carry the token, or '' when it may: http to a
	 * loopback address (127.0.0.0/8, ::1, localhost), or https to any host.
	 * Anything else would put the token on the network in clear text.
	 *
	 * @param string $url The sidecar's base URL.
	 * @return string
	 */
	public static function url_problem( string $url ): string {
		$parts = parse_url( $url ); // phpcs:ignore WordPress.WP.AlternativeFunctions.parse_url_parse_url -- runs without WordPress in the unit tests.
		if ( ! is_array( $parts ) || ! isset( $parts['scheme'], $parts['host'] ) || '' === $parts['host'] ) {
			return sprintf( 'CLOSTE_OPERATOR_SIDECAR_URL (%s) is not a URL', $url );
		}
		if ( isset( $parts['user'] ) || isset( $parts['pass'] ) ) {
			return sprintf( 'CLOSTE_OPERATOR_SIDECAR_URL (%s) must not hold a user or password', $url );
		}
		$scheme = strtolower( $parts['scheme'] );
		if ( 'https' === $scheme ) {
			return '';
		}
		if ( 'http' === $scheme && self::is_loopback( $parts['host'] ) ) {
			return '';
		}
		return sprintf( 'CLOSTE_OPERATOR_SIDECAR_URL (%s) is neither a loopback address nor https; the sidecar token is never sent there', $url );
	}

	/**
	 * Whether a URL's host is this machine: 127.0.0.0/8, ::1 or localhost.
	 *
	 * @param string $host A URL's host (an IPv6 address in brackets).
	 * @return bool
	 */
	public static function is_loopback( string $host ): bool {
		$host = strtolower( trim( $host, '[]' ) );
		if ( 'localhost' === $host ) {
			return true;
		}
		if ( false !== filter_var( $host, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4 ) ) {
			return 0 === strpos( $host, '127.' );
		}
		if ( false !== filter_var( $host, FILTER_VALIDATE_IP, FILTER_FLAG_IPV6 ) ) {
			return inet_pton( $host ) === inet_pton( '::1' );
		}
		return false;
	}

	/**
	 * Reads CLOSTE_OPERATOR_SIDECAR_URL, CLOSTE_OPERATOR_SIDECAR_TOKEN (or
	 * CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE), CLOSTE_OPERATOR_SIDECAR_TIMEOUT,
	 * CLOSTE_OPERATOR_SIDECAR_WRITE_TIMEOUT and CLOSTE_CLIENT_API_KEY (a
	 * placeholder, never a Closte key).
	 *
	 * @return self
	 */
	public static function from_constants(): self {
		$url     = defined( 'CLOSTE_OPERATOR_SIDECAR_URL' ) ? (string) constant( 'CLOSTE_OPERATOR_SIDECAR_URL' ) : self::DEFAULT_URL;
		$timeout = defined( 'CLOSTE_OPERATOR_SIDECAR_TIMEOUT' ) ? (float) constant( 'CLOSTE_OPERATOR_SIDECAR_TIMEOUT' ) : self::DEFAULT_TIMEOUT;
		if ( $timeout <= 0 ) {
			$timeout = self::DEFAULT_TIMEOUT;
		}
		$write_timeout = defined( 'CLOSTE_OPERATOR_SIDECAR_WRITE_TIMEOUT' ) ? (float) constant( 'CLOSTE_OPERATOR_SIDECAR_WRITE_TIMEOUT' ) : self::DEFAULT_WRITE_TIMEOUT;
		if ( $write_timeout <= 0 ) {
			$write_timeout = self::DEFAULT_WRITE_TIMEOUT;
		}
		$token = '';
		$error = '';
		if ( defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN' ) ) {
			$token = trim( (string) constant( 'CLOSTE_OPERATOR_SIDECAR_TOKEN' ) );
		} elseif ( defined( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) ) {
			list( $token, $error ) = self::read_token_file( (string) constant( 'CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE' ) );
		} else {
			$error = 'neither CLOSTE_OPERATOR_SIDECAR_TOKEN nor CLOSTE_OPERATOR_SIDECAR_TOKEN_FILE is defined in wp-config.php';
		}
		if ( '' === $token && '' === $error ) {
			$error = 'the sidecar token is empty';
		}
		$client_key = defined( 'CLOSTE_CLIENT_API_KEY' ) && is_scalar( constant( 'CLOSTE_CLIENT_API_KEY' ) ) ? (string) constant( 'CLOSTE_CLIENT_API_KEY' ) : '';
		return new self( rtrim( $url, '/' ), $token, $timeout, $error, $client_key, $write_timeout );
	}

	/**
	 * Reads a token file without ever raising a PHP warning.
	 *
	 * @param string $path The file (a mounted Kubernetes Secret, typically).
	 * @return array{0: string, 1: string} The token and an error ('' when read).
	 */
	public static function read_token_file( string $path ): array {
		if ( '' === $path || ! is_file( $path ) || ! is_readable( $path ) ) {
			return array( '', sprintf( 'cannot read the token file %s', $path ) );
		}
		$contents = file_get_contents( $path ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_get_contents_file_get_contents -- a local file.
		if ( false === $contents ) {
			return array( '', sprintf( 'cannot read the token file %s', $path ) );
		}
		$token = trim( $contents );
		return array( $token, '' === $token ? sprintf( 'the token file %s is empty', $path ) : '' );
	}
}
